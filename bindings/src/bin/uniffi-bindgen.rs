//! uniffi's binding generator, at the version the bindings are built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
