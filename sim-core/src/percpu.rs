pub type CpuId = u32;
