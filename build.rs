//! Build script: on Windows, embeds the application icon and the version
//! information (shown in Explorer's file properties) into `tern.exe`.
//!
//! Everywhere else it does nothing. `winresource` is a build-dependency only
//! for Windows hosts (`[target.'cfg(windows)'.build-dependencies]`), so other
//! hosts never build it; a cross build from Linux to Windows therefore gets no
//! icon in the executable (release builds run on a Windows machine).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(windows)]
    windows::embed_resources();
}

#[cfg(windows)]
mod windows {
    use std::env;

    pub fn embed_resources() {
        println!("cargo:rerun-if-changed=resources/icon/tern.ico");
        if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
            return;
        }
        let version = env!("CARGO_PKG_VERSION");
        let mut resource = winresource::WindowsResource::new();
        resource
            .set_icon("resources/icon/tern.ico")
            .set("ProductName", "Tern")
            .set("FileDescription", "Tern XMPP messenger")
            .set("InternalName", "tern")
            .set("OriginalFilename", "tern.exe")
            .set("CompanyName", "Tern developers")
            .set("LegalCopyright", "Tern developers, GPL-3.0-or-later")
            .set("ProductVersion", version)
            .set("FileVersion", version)
            .set_language(0x0409); // English (United States)
        if let Err(e) = resource.compile() {
            // A missing resource compiler must not go unnoticed in a release.
            panic!("cannot embed the Windows resources: {e}");
        }
    }
}
