//! Unit tests of the schema history logic.

use super::*;
