//! Plain-text rendering of events (no terminal control): one line per event worth seeing, then the recap.
