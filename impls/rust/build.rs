//! Links the crate against the C ABI shim (tch_shim.cpp built by torch.utils.cpp_extension), as
//! torch-sys's build script links tch-rs against LibTorch. The shim's folder comes from
//! `PERFSUITE_TCH_SHIM_DIR`; the library is found there at run time through an rpath.

use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=PERFSUITE_TCH_SHIM_DIR");
    let dir = env::var("PERFSUITE_TCH_SHIM_DIR")
        .expect("PERFSUITE_TCH_SHIM_DIR must name the folder holding perfsuite_tch.so (impls/rust.py sets it)");
    println!("cargo:rustc-link-search=native={dir}");
    println!("cargo:rustc-link-lib=dylib:+verbatim=perfsuite_tch.so");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}
