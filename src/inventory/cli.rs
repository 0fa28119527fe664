//! `edgefleet inventory`: print an inventory like `ansible-inventory` does.

use crate::cli::InventoryArgs;
use crate::error::{AppError, ExitCode};

/// Run `edgefleet inventory`.
pub fn run(_args: InventoryArgs) -> Result<ExitCode, AppError> {
    Err(AppError::Other("inventory: not implemented yet".into()))
}
