#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| watt_core::fuzz::light_client(data));
