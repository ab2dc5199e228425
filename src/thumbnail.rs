//! Thumbnails of received images (being written by a helper).
