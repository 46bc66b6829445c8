//! Linux ioctl request numbers (`include/uapi/asm-generic/ioctl.h`, the x86 layout).
//!
//! `_IOC(dir, type, nr, size) = dir << 30 | size << 16 | type << 8 | nr` with 8 bits of number,
//! 8 bits of type, 14 bits of size and 2 bits of direction (`_IOC_WRITE` = 1, `_IOC_READ` = 2).

/// `_IOC_WRITE`: userspace writes, the kernel reads.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the kernel writes back.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, ty, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(
        size < (1 << 14),
        "ioctl argument larger than _IOC_SIZEBITS allows"
    );
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}

/// `_IOWR(ty, nr, T)` with `size = size_of::<T>()`.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}
