//! Previews of received images: decoded under strict limits off the UI thread, cached on disk in the profile.
//!
//! Whatever arrives over the network is hostile until decoded: a few bytes
//! can claim to be a 100 000 × 100 000 picture. Sizes are checked from the
//! header before a single pixel is allocated, and the decoder runs under an
//! allocation budget, so such a file is refused instead of eating memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use crate::profile::create_private_dir;

use image::error::{LimitErrorKind, UnsupportedErrorKind};
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

/// The longest side of a thumbnail, in pixels: previews fit a `SIDE` × `SIDE` box.
pub const SIDE: u32 = 320;

/// How much an image may cost to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    /// Bytes the decoder may allocate, the decoded pixels included.
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 12_000,
            max_height: 12_000,
            max_alloc: 256 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Limits for our own cached thumbnails: anything bigger was not written by us.
    fn cached() -> Self {
        Self {
            max_width: SIDE,
            max_height: SIDE,
            max_alloc: 16 * 1024 * 1024,
        }
    }
}

/// A decoded preview, ready for `iced::widget::image::Handle::from_rgba`.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    /// RGBA8, row after row: `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

// Not derived: a log line must not carry 400 KiB of pixels.
impl std::fmt::Debug for Thumbnail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnail")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("rgba", &format_args!("[{} bytes]", self.rgba.len()))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("this file is not an image")]
    NotAnImage,
    #[error("images of this kind cannot be shown: {0}")]
    Unsupported(String),
    #[error("the image is too large to preview ({width} × {height} pixels)")]
    TooLarge { width: u32, height: u32 },
    #[error("the image is damaged: {0}")]
    Corrupt(String),
    #[error("cannot access {path}: {source}", path = .0.display(), source = .1)]
    Io(PathBuf, #[source] std::io::Error),
}

impl Error {
    /// Whether trying again later could succeed: a disk error may pass, a
    /// damaged or oversized image stays what it is.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io(..))
    }
}

/// Blocking: decodes the image at `path` (its format told by its content,
/// never its name) under `limits` and scales it down to fit `SIDE` × `SIDE`,
/// keeping its aspect and never enlarging it. Only the first frame of an
/// animation is kept.
pub fn make(path: &Path, limits: &Limits) -> Result<Thumbnail, Error> {
    // A decoder bug on a crafted file must cost one preview, not the app.
    catch_unwind(AssertUnwindSafe(|| make_unguarded(path, limits))).unwrap_or_else(|_| {
        Err(Error::Corrupt(
            "the decoder gave up on this file".to_string(),
        ))
    })
}

/// At most this many images decode at once. Each may take up to its
/// `max_alloc` (256 MiB by default), so a chat with 50 links to 8000 × 8000
/// images costs at most `MAX_DECODES` × 256 MiB while they decode, not 50 ×.
pub const MAX_DECODES: usize = 2;

/// Turns for decoding, shared by every preview in the app.
static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_DECODES);

/// `make` on tokio's blocking pool, so the UI never waits for a decoder, one
/// of at most [`MAX_DECODES`] at a time.
pub async fn make_async(path: PathBuf, limits: Limits) -> Result<Thumbnail, Error> {
    let _turn = DECODES
        .acquire()
        .await
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    tokio::task::spawn_blocking(move || make(&path, &limits))
        .await
        .unwrap_or_else(|e| Err(Error::Corrupt(e.to_string())))
}

fn make_unguarded(path: &Path, limits: &Limits) -> Result<Thumbnail, Error> {
    let (image, orientation) = decode(path, limits)?;
    let (width, height) = fit(image.width(), image.height(), SIDE);
    let mut small = if (width, height) == (image.width(), image.height()) {
        image
    } else if image.width() >= width.saturating_mul(4) {
        // Triangle over a huge reduction reads every source pixel many times;
        // averaging blocks first is cheap and alias-free that far down, and
        // the final filtered step keeps the edges smooth.
        image
            .thumbnail_exact(width.saturating_mul(2), height.saturating_mul(2))
            .resize_exact(width, height, FilterType::Triangle)
    } else {
        image.resize_exact(width, height, FilterType::Triangle)
    };
    // The box is square, so turning after scaling changes nothing of the fit.
    small.apply_orientation(orientation);
    Ok(to_thumbnail(small))
}

fn to_thumbnail(image: DynamicImage) -> Thumbnail {
    let rgba = image.into_rgba8();
    Thumbnail {
        width: rgba.width(),
        height: rgba.height(),
        rgba: rgba.into_raw(),
    }
}

/// The largest size within `side` × `side` with the aspect of `width` × `height`,
/// or the size itself if it already fits.
fn fit(width: u32, height: u32, side: u32) -> (u32, u32) {
    if width <= side && height <= side {
        return (width, height);
    }
    let scaled = |short: u32, long: u32| {
        let exact = (u64::from(short) * u64::from(side) + u64::from(long) / 2) / u64::from(long);
        u32::try_from(exact).unwrap_or(side).clamp(1, side)
    };
    if width >= height {
        (side, scaled(height, width))
    } else {
        (scaled(width, height), side)
    }
}

fn decode(path: &Path, limits: &Limits) -> Result<(DynamicImage, Orientation), Error> {
    let io_error = |e| Error::Io(path.to_path_buf(), e);
    let file = File::open(path).map_err(io_error)?;
    // Not `ImageReader::open`: it would trust the file's extension when the
    // content says nothing, and received files are named by the sender.
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(io_error)?;
    if reader.format().is_none() {
        return Err(Error::NotAnImage);
    }

    // Only the header is read here: the sizes are judged before any pixel
    // buffer exists, and the budget already bounds the header's own chunks.
    let mut header_limits = image::Limits::default();
    header_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(header_limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_error(path, e, None))?;
    let (width, height) = decoder.dimensions();
    let too_large = Error::TooLarge { width, height };
    if width > limits.max_width || height > limits.max_height {
        return Err(too_large);
    }
    if width == 0 || height == 0 {
        return Err(Error::Corrupt("it has no pixels".to_string()));
    }

    let mut strict = image::Limits::default();
    strict.max_image_width = Some(limits.max_width);
    strict.max_image_height = Some(limits.max_height);
    strict.max_alloc = Some(limits.max_alloc);
    // As `ImageReader::decode` does: the output buffer comes out of the
    // budget, and the decoder gets what is left for its own work.
    if strict.reserve(decoder.total_bytes()).is_err() {
        return Err(too_large);
    }
    decoder
        .set_limits(strict)
        .map_err(|e| map_error(path, e, Some((width, height))))?;
    // A photo turned by its EXIF tag is still worth showing unturned.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| map_error(path, e, Some((width, height))))?;
    Ok((image, orientation))
}

fn map_error(path: &Path, error: ImageError, size: Option<(u32, u32)>) -> Error {
    match error {
        ImageError::Limits(e) => match (e.kind(), size) {
            (LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory, Some(s)) => {
                Error::TooLarge {
                    width: s.0,
                    height: s.1,
                }
            }
            (LimitErrorKind::Unsupported { .. }, _) => Error::Unsupported(e.to_string()),
            // Before the size is known, only a malformed header overruns the budget.
            _ => Error::Corrupt(e.to_string()),
        },
        ImageError::Unsupported(e) => match e.kind() {
            UnsupportedErrorKind::Format(image::error::ImageFormatHint::Exact(format)) => {
                Error::Unsupported(format_name(format))
            }
            UnsupportedErrorKind::Format(_) => Error::NotAnImage,
            _ => Error::Unsupported(e.to_string()),
        },
        ImageError::Decoding(e) => Error::Corrupt(e.to_string()),
        // The file opened fine: running out of it means it was cut short.
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Corrupt("the file is cut short".to_string())
        }
        ImageError::IoError(e) => Error::Io(path.to_path_buf(), e),
        ImageError::Parameter(e) => Error::Corrupt(e.to_string()),
        ImageError::Encoding(e) => Error::Corrupt(e.to_string()),
    }
}

fn format_name(format: ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map_or_else(|| format!("{format:?}"), |ext| ext.to_uppercase())
}

/// The disk cache of received images in the profile: originals, their
/// thumbnails, and which ones could not be read, each named by the SHA-256
/// of the image's URL.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache in `dir` (e.g. `profile.cache_dir().join("images")`), created
    /// only when something is first stored.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the folder (private to the user on unix) if it does not exist.
    pub fn ensure_dir(&self) -> Result<&Path, Error> {
        create_private_dir(&self.dir).map_err(|e| Error::Io(self.dir.clone(), e))?;
        Ok(&self.dir)
    }

    /// Where the downloaded original of `url` lives.
    pub fn original(&self, url: &str) -> PathBuf {
        self.entry(url, "orig")
    }

    /// Where the thumbnail of `url` lives, a PNG.
    pub fn thumbnail_path(&self, url: &str) -> PathBuf {
        self.entry(url, "thumb.png")
    }

    fn failure_path(&self, url: &str) -> PathBuf {
        self.entry(url, "failed")
    }

    fn entry(&self, url: &str, extension: &str) -> PathBuf {
        let hash = Sha256::digest(url.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.{extension}"))
    }

    /// Moves a finished download of `url` (best made inside `dir()`, so the
    /// move is a rename on the same disk) to `original(url)`, replacing any.
    pub fn adopt_original(&self, url: &str, downloaded: &Path) -> Result<PathBuf, Error> {
        self.ensure_dir()?;
        let path = self.original(url);
        std::fs::rename(downloaded, &path).map_err(|e| Error::Io(path.clone(), e))?;
        Ok(path)
    }

    /// The cached thumbnail of `url`, if there is a sound one. A damaged one
    /// is removed so that it gets made again.
    pub fn load(&self, url: &str) -> Option<Thumbnail> {
        let path = self.thumbnail_path(url);
        if !path.exists() {
            return None;
        }
        let decoded = catch_unwind(AssertUnwindSafe(|| decode(&path, &Limits::cached())))
            .unwrap_or_else(|_| Err(Error::Corrupt("the decoder gave up".to_string())));
        match decoded {
            Ok((image, _)) => Some(to_thumbnail(image)),
            Err(Error::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "dropping a bad cached thumbnail");
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove it");
                }
                None
            }
        }
    }

    /// Saves `thumb` as the thumbnail of `url`. Readers see the old file or
    /// the new one, never half of one.
    pub fn store(&self, url: &str, thumb: &Thumbnail) -> Result<PathBuf, Error> {
        let expected = u64::from(thumb.width) * u64::from(thumb.height) * 4;
        if thumb.width == 0 || thumb.height == 0 || thumb.rgba.len() as u64 != expected {
            return Err(Error::Corrupt(format!(
                "{} bytes do not make a {} × {} picture",
                thumb.rgba.len(),
                thumb.width,
                thumb.height
            )));
        }
        let path = self.thumbnail_path(url);
        self.write_atomically(&path, |out| {
            let encoder = image::codecs::png::PngEncoder::new(out);
            image::ImageEncoder::write_image(
                encoder,
                &thumb.rgba,
                thumb.width,
                thumb.height,
                image::ExtendedColorType::Rgba8,
            )
            .map_err(|e| match e {
                ImageError::IoError(e) => e,
                other => std::io::Error::other(other.to_string()),
            })
        })?;
        Ok(path)
    }

    /// Why the image of `url` could not be shown, if it was found unreadable before.
    pub fn failure(&self, url: &str) -> Option<String> {
        std::fs::read_to_string(self.failure_path(url)).ok()
    }

    /// Remembers that the image of `url` cannot be shown, so that it is not
    /// fetched again at every start. Transient errors are not remembered.
    pub fn remember_failure(&self, url: &str, error: &Error) {
        if error.is_transient() {
            return;
        }
        let path = self.failure_path(url);
        let text = error.to_string();
        if let Err(e) = self.write_atomically(&path, |out| out.write_all(text.as_bytes())) {
            tracing::warn!(error = %e, "cannot remember a failed image");
        }
    }

    /// Forgets an earlier failure of `url`, so that it is tried again.
    pub fn forget_failure(&self, url: &str) {
        let path = self.failure_path(url);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove it"),
        }
    }

    fn write_atomically(
        &self,
        path: &Path,
        write: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        self.ensure_dir()?;
        let io_error = |e| Error::Io(path.to_path_buf(), e);
        // Hidden and in the same folder: never mistaken for an entry, and
        // renamed into place on the same disk.
        let part = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&self.dir)
            .map_err(io_error)?;
        {
            let mut out = BufWriter::new(part.as_file());
            write(&mut out).map_err(io_error)?;
            out.flush().map_err(io_error)?;
        }
        part.persist(path).map_err(|e| io_error(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use image::{ImageEncoder, Rgb, RgbImage};
    use std::time::{Duration, Instant};

    fn red(width: u32, height: u32) -> RgbImage {
        RgbImage::from_pixel(width, height, Rgb([255, 0, 0]))
    }

    fn png_bytes(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn jpeg_bytes(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A real small PNG whose header claims `width` × `height`: what a
    /// decompression bomb looks like until its pixels are inflated.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png_bytes(&red(4, 4));
        // Signature (8), length (4), "IHDR" (4), then width and height.
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    fn pixel(thumb: &Thumbnail, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * thumb.width + x) * 4) as usize;
        thumb.rgba[at..at + 4].try_into().unwrap()
    }

    fn is_red(p: [u8; 4]) -> bool {
        p[0] > 220 && p[1] < 40 && p[2] < 40 && p[3] == 255
    }

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(1000, 500, 320), (320, 160));
        assert_eq!(fit(500, 1000, 320), (160, 320));
        assert_eq!(fit(100, 50, 320), (100, 50));
        assert_eq!(fit(320, 320, 320), (320, 320));
        assert_eq!(fit(100_000, 1, 320), (320, 1));
        assert_eq!(fit(u32::MAX, u32::MAX - 1, 320), (320, 320));
    }

    #[test]
    fn png_and_jpeg_are_scaled_down_and_stay_red() {
        let dir = tempfile::tempdir().unwrap();
        let image = red(1000, 500);
        for path in [
            write(dir.path(), "a.png", &png_bytes(&image)),
            write(dir.path(), "a.jpg", &jpeg_bytes(&image)),
        ] {
            let thumb = make(&path, &Limits::default()).unwrap();
            assert_eq!((thumb.width, thumb.height), (320, 160), "{path:?}");
            assert_eq!(thumb.rgba.len(), 320 * 160 * 4);
            for (x, y) in [(0, 0), (160, 80), (319, 159)] {
                assert!(
                    is_red(pixel(&thumb, x, y)),
                    "{path:?} {:?}",
                    pixel(&thumb, x, y)
                );
            }
        }
    }

    #[test]
    fn tall_and_huge_reductions_keep_their_aspect() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "tall.png", &png_bytes(&red(500, 1000)));
        let thumb = make(&path, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (160, 320));

        let path = write(dir.path(), "wide.png", &png_bytes(&red(3000, 1500)));
        let thumb = make(&path, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (320, 160));
        assert!(is_red(pixel(&thumb, 319, 159)));
    }

    #[test]
    fn the_format_comes_from_the_content_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "really-a-png.jpg", &png_bytes(&red(10, 10)));
        let thumb = make(&path, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (10, 10));
    }

    #[test]
    fn other_colour_types_come_out_as_rgba() {
        let dir = tempfile::tempdir().unwrap();
        let gray = image::GrayImage::from_pixel(640, 640, image::Luma([200]));
        let path = dir.path().join("gray.png");
        gray.save(&path).unwrap();
        let thumb = make(&path, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (320, 320));
        assert_eq!(pixel(&thumb, 10, 10), [200, 200, 200, 255]);

        let gif = write(dir.path(), "a.gif", &gif_bytes(&red(40, 20)));
        let thumb = make(&gif, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (40, 20));
        assert!(is_red(pixel(&thumb, 20, 10)));
    }

    fn gif_bytes(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut out)
            .encode(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "small.png", &png_bytes(&red(100, 50)));
        let thumb = make(&path, &Limits::default()).unwrap();
        assert_eq!((thumb.width, thumb.height), (100, 50));
        assert_eq!(thumb.rgba.len(), 100 * 50 * 4);
        assert!(is_red(pixel(&thumb, 50, 25)));
    }

    #[test]
    fn truncated_images_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        // Noise, so that half the file is half the picture and not just a
        // trailer that decoders might forgive.
        let mut state = 1u32;
        let noise = RgbImage::from_fn(300, 200, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, _] = state.to_le_bytes();
            Rgb([a, b, c])
        });
        let png = png_bytes(&noise);
        let path = write(dir.path(), "cut.png", &png[..png.len() / 2]);
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");

        // Cut inside the header: not even the size can be read.
        let path = write(dir.path(), "stub.png", &png[..20]);
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");

        let jpeg = jpeg_bytes(&noise);
        let path = write(dir.path(), "stub.jpg", &jpeg[..40]);
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");

        // Like browsers, the JPEG decoder shows what arrived and pads the
        // rest in grey: a preview of the right size, or a refusal, is fine.
        let path = write(dir.path(), "cut.jpg", &jpeg[..jpeg.len() / 2]);
        match make(&path, &Limits::default()) {
            Ok(thumb) => assert_eq!((thumb.width, thumb.height), (300, 200)),
            Err(e) => assert!(matches!(e, Error::Corrupt(_)), "{e:?}"),
        }

        let gif = gif_bytes(&noise);
        let path = write(dir.path(), "cut.gif", &gif[..gif.len() / 2]);
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::Corrupt(_))), "{result:?}");
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bomb.png", &png_claiming(20_000, 20_000));
        let start = Instant::now();
        let result = make(&path, &Limits::default());
        assert!(
            matches!(
                result,
                Err(Error::TooLarge {
                    width: 20_000,
                    height: 20_000
                })
            ),
            "{result:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );

        // GIF sizes are two bytes each: the largest possible claim.
        let mut gif = gif_bytes(&red(4, 4));
        gif[6..8].copy_from_slice(&u16::MAX.to_le_bytes());
        gif[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        let path = write(dir.path(), "bomb.gif", &gif);
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    }

    #[test]
    fn an_image_over_the_memory_budget_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let tight = Limits {
            max_alloc: 1024 * 1024,
            ..Limits::default()
        };
        // Its pixel data is bogus: decoding it would say Corrupt, not TooLarge.
        let path = write(dir.path(), "fat.png", &png_claiming(2000, 2000));
        let result = make(&path, &tight);
        assert!(
            matches!(
                result,
                Err(Error::TooLarge {
                    width: 2000,
                    height: 2000
                })
            ),
            "{result:?}"
        );

        let path = write(dir.path(), "fat.jpg", &jpeg_bytes(&red(2000, 2000)));
        let result = make(&path, &tight);
        assert!(matches!(result, Err(Error::TooLarge { .. })), "{result:?}");
    }

    #[test]
    fn text_is_not_an_image_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "photo.jpg",
            b"Hello, this is not a photo at all.\n",
        );
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::NotAnImage)), "{result:?}");

        let path = write(dir.path(), "empty.png", b"");
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::NotAnImage)), "{result:?}");

        let result = make(&dir.path().join("missing.png"), &Limits::default());
        assert!(matches!(result, Err(Error::Io(..))), "{result:?}");
    }

    #[test]
    fn known_but_unsupported_formats_say_so() {
        let dir = tempfile::tempdir().unwrap();
        // A TIFF signature: recognised, but this build cannot decode it.
        let path = write(dir.path(), "a.tif", b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0");
        let result = make(&path, &Limits::default());
        assert!(matches!(result, Err(Error::Unsupported(_))), "{result:?}");
    }

    #[tokio::test]
    async fn make_async_runs_off_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.png", &png_bytes(&red(1000, 500)));
        let thumb = make_async(path, Limits::default()).await.unwrap();
        assert_eq!((thumb.width, thumb.height), (320, 160));
    }

    #[test]
    fn cache_paths_are_named_by_the_url() {
        let cache = Cache::new(PathBuf::from("/nowhere/images"));
        let a = "https://upload.example/a/photo.jpg";
        let b = "https://upload.example/b/photo.jpg";
        assert_eq!(cache.thumbnail_path(a), cache.thumbnail_path(a));
        assert_ne!(cache.thumbnail_path(a), cache.thumbnail_path(b));
        assert_ne!(cache.original(a), cache.original(b));
        assert_ne!(cache.original(a), cache.thumbnail_path(a));
        let name = cache.thumbnail_path(a);
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 64 + ".thumb.png".len());
        assert!(name.ends_with(".thumb.png"));
        assert!(cache.original(a).starts_with("/nowhere/images"));
        assert!(cache.original(a).to_str().unwrap().ends_with(".orig"));
    }

    #[test]
    fn cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("images"));
        let url = "https://upload.example/photo.jpg";
        assert!(cache.load(url).is_none());

        let thumb = Thumbnail {
            width: 3,
            height: 2,
            rgba: (0..24).map(|i| (i * 10) as u8).collect(),
        };
        let path = cache.store(url, &thumb).unwrap();
        assert_eq!(path, cache.thumbnail_path(url));
        assert_eq!(cache.load(url), Some(thumb.clone()));
        assert!(cache.load("https://upload.example/other.jpg").is_none());

        // Storing again replaces, and leaves no temporary file behind.
        let other = Thumbnail {
            width: 1,
            height: 1,
            rgba: vec![1, 2, 3, 4],
        };
        cache.store(url, &other).unwrap();
        assert_eq!(cache.load(url), Some(other));
        let names: Vec<_> = std::fs::read_dir(cache.dir()).unwrap().collect();
        assert_eq!(names.len(), 1);

        let bad = Thumbnail {
            width: 2,
            height: 2,
            rgba: vec![0; 3],
        };
        assert!(matches!(cache.store(url, &bad), Err(Error::Corrupt(_))));
    }

    #[cfg(unix)]
    #[test]
    fn the_cache_folder_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("images"));
        assert!(!cache.dir().exists());
        cache.remember_failure("u", &Error::NotAnImage);
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn bad_cached_thumbnails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().to_path_buf());
        let url = "https://upload.example/photo.jpg";
        let path = cache.thumbnail_path(url);

        std::fs::write(&path, b"\x89PNG\r\n\x1a\n garbage").unwrap();
        assert!(cache.load(url).is_none());
        assert!(!path.exists());

        // Not something we would have written: too big for a thumbnail.
        std::fs::write(&path, png_bytes(&red(SIDE + 1, 10))).unwrap();
        assert!(cache.load(url).is_none());
        assert!(!path.exists());
    }

    #[test]
    fn failures_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("images"));
        let url = "https://upload.example/photo.jpg";
        assert_eq!(cache.failure(url), None);

        let error = Error::TooLarge {
            width: 20_000,
            height: 20_000,
        };
        cache.remember_failure(url, &error);
        assert_eq!(cache.failure(url), Some(error.to_string()));
        assert_eq!(cache.failure("https://upload.example/other.jpg"), None);

        cache.forget_failure(url);
        assert_eq!(cache.failure(url), None);

        let transient = Error::Io(PathBuf::from("/x"), std::io::Error::other("disk full"));
        cache.remember_failure(url, &transient);
        assert_eq!(cache.failure(url), None);
    }

    #[test]
    fn adopted_originals_land_at_their_place() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("images"));
        cache.ensure_dir().unwrap();
        let download = write(cache.dir(), ".download", b"bytes");
        let url = "https://upload.example/photo.jpg";
        let path = cache.adopt_original(url, &download).unwrap();
        assert_eq!(path, cache.original(url));
        assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
        assert!(!download.exists());
    }

    #[tokio::test]
    async fn no_more_than_max_decodes_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.png");
        image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 255]))
            .save(&path)
            .unwrap();
        // Every turn taken (as by decodes in progress): a new one waits.
        let held = DECODES.acquire_many(MAX_DECODES as u32).await.unwrap();
        let waiting = tokio::spawn(make_async(path.clone(), Limits::default()));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "a decode ran beside {MAX_DECODES} others"
        );
        drop(held);
        let thumb = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((thumb.width, thumb.height), (8, 8));
    }

    /// Peak memory while 50 previews of 8000 × 8000 PNGs decode at once (a
    /// measurement: `cargo test --lib many_large_previews -- --ignored --nocapture`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn many_large_previews_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.png");
        image::RgbaImage::from_pixel(8000, 8000, image::Rgba([200, 10, 10, 255]))
            .save(&path)
            .unwrap();
        let hwm = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        println!(
            "PNG {} bytes; peak RSS before: {}",
            std::fs::metadata(&path).unwrap().len(),
            hwm()
        );
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..50)
            .map(|n| {
                let copy = dir.path().join(format!("big-{n}.png"));
                std::fs::copy(&path, &copy).unwrap();
                tokio::spawn(make_async(copy, Limits::default()))
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        println!(
            "50 previews of 8000 x 8000 in {:.1} s; peak RSS: {}",
            started.elapsed().as_secs_f64(),
            hwm()
        );
    }
}
