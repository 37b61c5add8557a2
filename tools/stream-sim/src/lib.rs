//! stream-sim (being written)
