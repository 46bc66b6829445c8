//! TEE firmware interfaces (filled by the SNP/TDX work).
