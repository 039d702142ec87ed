//! Unit tests of the DDL parser.

use super::*;
