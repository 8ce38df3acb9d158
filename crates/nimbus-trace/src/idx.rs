//! IDX files, the format of MNIST (`mnist-t10k/*-idx?-ubyte.gz`): two zero
//! bytes, a type byte, the number of dimensions, each dimension as a
//! big-endian u32, then the values in row-major order. Only unsigned bytes
//! (type 0x08, MNIST's) are read; other types are refused by name. A file
//! that starts with gzip's magic is inflated first, with the inflated size
//! capped so that a small file cannot expand without bound.
//!
//! [`read_mnist`] pairs an images file (n × rows × cols) with a labels
//! file (n), and checks that the counts agree and every label is a digit.

use std::io::Read;

use crate::TraceError;
use crate::input::Source;

/// Largest file read, compressed or not, and largest inflated size.
const MAX_BYTES: u64 = 256 << 20;

/// An array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<u8>,
}

/// MNIST images with their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mnist {
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Pixels, image after image (0 = background, 255 = ink).
    pub pixels: Vec<u8>,
    /// One label (0-9) per image.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Dimensions for a message: at most six, so that a header of 255 of
/// them cannot make the message long.
fn show_dims(dims: &[usize]) -> String {
    let shown: Vec<String> = dims.iter().take(6).map(usize::to_string).collect();
    if dims.len() > 6 {
        format!("[{}, … ({} in all)]", shown.join(", "), dims.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "short",
        0x0C => "int",
        0x0D => "float",
        0x0E => "double",
        _ => "unknown",
    }
}

/// Reads an IDX array of unsigned bytes, gzip-compressed or not.
pub fn read_idx<'a>(source: impl Into<Source<'a>>) -> Result<IdxArray, TraceError> {
    let source = source.into();
    let name = source.name();
    let fail = |m: String| TraceError::file(name, m);
    let mut raw = Vec::new();
    source.open()?.take(MAX_BYTES + 1).read_to_end(&mut raw).map_err(|e| TraceError::io(name, e))?;
    if raw.len() as u64 > MAX_BYTES {
        return Err(fail(format!("larger than {MAX_BYTES} bytes")));
    }
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| fail(format!("not a readable gzip file: {e}")))?;
        if out.len() as u64 > MAX_BYTES {
            return Err(fail(format!("inflates to more than {MAX_BYTES} bytes")));
        }
        out
    } else {
        raw
    };
    let header = bytes.get(..4).ok_or_else(|| fail(format!("{} bytes: shorter than an IDX header", bytes.len())))?;
    if header[0] != 0 || header[1] != 0 {
        return Err(fail(format!(
            "bytes 0-1 are {:#04x} {:#04x}, not IDX's two zero bytes (nor gzip's magic)",
            header[0], header[1]
        )));
    }
    if header[2] != 0x08 {
        return Err(fail(format!(
            "type byte {:#04x} ({}): only unsigned bytes (0x08, MNIST's) are read",
            header[2],
            type_name(header[2])
        )));
    }
    let ndim = usize::from(header[3]);
    if ndim == 0 {
        return Err(fail("zero dimensions".into()));
    }
    let body = 4 + 4 * ndim;
    let dim_bytes = bytes.get(4..body).ok_or_else(|| {
        fail(format!("{} bytes: the header declares {ndim} dimensions, which need {body}", bytes.len()))
    })?;
    let dims: Vec<usize> =
        dim_bytes.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize).collect();
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = count.and_then(|c| c.checked_add(body));
    match expected {
        Some(total) if total == bytes.len() => {}
        Some(total) => {
            return Err(fail(format!(
                "dimensions {} need {total} bytes with the header; the file has {}{}",
                show_dims(&dims),
                bytes.len(),
                if bytes.len() < total { " (truncated?)" } else { " (trailing bytes)" }
            )));
        }
        None => return Err(fail(format!("dimensions {} overflow", show_dims(&dims)))),
    }
    Ok(IdxArray { dims, data: bytes[body..].to_vec() })
}

/// Reads MNIST images (n × rows × cols) and labels (n).
pub fn read_mnist<'a>(images: impl Into<Source<'a>>, labels: impl Into<Source<'a>>) -> Result<Mnist, TraceError> {
    let (images, labels) = (images.into(), labels.into());
    let (img_name, lab_name) = (images.name(), labels.name());
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    let [n, rows, cols] = img.dims[..] else {
        return Err(TraceError::file(
            img_name,
            format!("dimensions {}: images need three (n, rows, cols)", show_dims(&img.dims)),
        ));
    };
    let [m] = lab.dims[..] else {
        return Err(TraceError::file(lab_name, format!("dimensions {}: labels need one (n)", show_dims(&lab.dims))));
    };
    if n != m {
        return Err(TraceError::file(lab_name, format!("{m} labels for {n} images in {}", img_name.display())));
    }
    if let Some(i) = lab.data.iter().position(|&l| l > 9) {
        return Err(TraceError::file(lab_name, format!("label {} of item {i} is not a digit", lab.data[i])));
    }
    Ok(Mnist { rows, cols, pixels: img.data, labels: lab.data })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;

    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, u8::try_from(dims.len()).expect("few dims")];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).expect("writes");
        e.finish().expect("finishes")
    }

    fn read(bytes: &[u8]) -> Result<IdxArray, TraceError> {
        read_idx(Source::bytes(Path::new("x.idx"), bytes))
    }

    #[test]
    fn plain_and_gzip_arrays_read_alike() {
        let plain = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = read(&plain).expect("plain");
        assert_eq!((a.dims.clone(), a.data.clone()), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
        assert_eq!(read(&gz(&plain)).expect("gzip"), a);
    }

    #[test]
    fn damaged_files_are_errors_that_say_why() {
        let good = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for (bytes, says) in [
            (good[..good.len() - 1].to_vec(), "truncated"),
            ([good.clone(), vec![9]].concat(), "trailing"),
            (vec![0, 0, 8], "shorter than an IDX header"),
            (vec![1, 0, 8, 1, 0, 0, 0, 0], "two zero bytes"),
            (vec![0, 0, 0x0D, 1, 0, 0, 0, 0], "float"),
            (vec![0, 0, 8, 3, 0, 0, 0, 1], "need 16"),
            (vec![0, 0, 8, 0], "zero dimensions"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
            (idx(&[7; 200], &[]), "[7, 7, 7, 7, 7, 7, … (200 in all)] overflow"),
            (vec![0x1f, 0x8b, 8, 0, 1, 2], "gzip"),
        ] {
            let e = read(&bytes).expect_err(says).to_string();
            assert!(e.starts_with("x.idx") && e.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn mnist_pairs_images_with_digit_labels() {
        let images = idx(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7]);
        let m = read_mnist(Source::bytes(Path::new("i"), &images), Source::bytes(Path::new("l"), &idx(&[2], &[7, 3])))
            .expect("valid");
        assert_eq!((m.len(), m.rows, m.cols, m.image(1)), (2, 2, 2, &[4u8, 5, 6, 7][..]));
        let e =
            read_mnist(Source::bytes(Path::new("i"), &images), Source::bytes(Path::new("l"), &idx(&[3], &[1, 2, 3])))
                .expect_err("count");
        assert!(e.to_string().contains("3 labels for 2 images"), "{e}");
        let e = read_mnist(Source::bytes(Path::new("i"), &images), Source::bytes(Path::new("l"), &idx(&[2], &[1, 12])))
            .expect_err("digit");
        assert!(e.to_string().contains("label 12 of item 1"), "{e}");
        let e = read_mnist(
            Source::bytes(Path::new("i"), &idx(&[8], &[0; 8])),
            Source::bytes(Path::new("l"), &idx(&[2], &[1, 2])),
        )
        .expect_err("shape");
        assert!(e.to_string().contains("images need three"), "{e}");
    }

    #[test]
    fn the_mnist_test_split_reads_with_its_known_digit_counts() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist-t10k");
        if !dir.is_dir() {
            eprintln!("NOTICE: ../shared/data/mnist-t10k is absent; skipping the MNIST test");
            return;
        }
        let m =
            read_mnist(&dir.join("t10k-images-idx3-ubyte.gz"), &dir.join("t10k-labels-idx1-ubyte.gz")).expect("reads");
        assert_eq!((m.len(), m.rows, m.cols), (10_000, 28, 28));
        let mut counts = [0usize; 10];
        for &l in &m.labels {
            counts[usize::from(l)] += 1;
        }
        // The test split's published class sizes.
        assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    }
}
