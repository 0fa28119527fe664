//! Executor behaviour that is not about one feature of the language: failure accounting (a device fails unless it
//! finished ok), isolation of one device's failure or panic from the others.
