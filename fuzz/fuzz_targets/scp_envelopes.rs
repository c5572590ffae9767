#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| watt_core::fuzz::scp_envelopes(data));
