//! drivers/virtio/virtio_balloon.c as an executable model (being written).
#![forbid(unsafe_code)]
