//! Ferrite Compute (being written): a Nova-compatible compute API subset at
//! `/v2.1` and the scheduler that claims bare-metal nodes through Placement.
