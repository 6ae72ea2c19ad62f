//! Host arrays.
pub struct Array;
