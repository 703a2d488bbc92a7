//! The IDX header: parsed and checked before anything is sized from it.

use std::path::Path;

use crate::error::{DatasetError, Result};
use crate::kinds::ElementType;

/// A checked IDX header: element type and dimensions, with sizes known not to overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxHeader {
    element_type: ElementType,
    dims: Vec<usize>,
    elements: usize,
    file_len: u64,
}

impl IdxHeader {
    /// Parses the header at the start of `bytes` (which may hold more than the header).
    ///
    /// `path` only names the source in errors. The header alone is checked here (magic, type
    /// code, length, overflow); [`IdxHeader::check_len`] checks it against a file length.
    ///
    /// # Errors
    /// [`DatasetError::TruncatedHeader`] if `bytes` ends inside the header,
    /// [`DatasetError::BadMagic`], [`DatasetError::UnknownElementType`], and
    /// [`DatasetError::SizeOverflow`] if the data size overflows `usize`.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let short = |expected: usize| DatasetError::TruncatedHeader {
            path: path.to_path_buf(),
            expected: expected as u64,
            actual: bytes.len() as u64,
        };
        if bytes.len() < 4 {
            return Err(short(4));
        }
        if bytes[0] != 0 || bytes[1] != 0 {
            return Err(DatasetError::BadMagic {
                path: path.to_path_buf(),
                found: [bytes[0], bytes[1]],
            });
        }
        let element_type =
            ElementType::from_code(bytes[2]).ok_or_else(|| DatasetError::UnknownElementType {
                path: path.to_path_buf(),
                code: bytes[2],
            })?;
        let rank = usize::from(bytes[3]);
        let header_len = 4 + 4 * rank;
        if bytes.len() < header_len {
            return Err(short(header_len));
        }
        let raw_dims: Vec<u32> = bytes[4..header_len]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Self::from_dims(element_type, &raw_dims, path)
    }

    /// A header for `element_type` with dimensions `dims`.
    ///
    /// # Errors
    /// [`DatasetError::SizeOverflow`] if the total size overflows `usize` (`path` names the
    /// source in the error), [`DatasetError::InvalidConfig`] if the rank exceeds 255.
    pub fn from_dims(element_type: ElementType, dims: &[u32], path: &Path) -> Result<Self> {
        if dims.len() > 255 {
            return Err(DatasetError::InvalidConfig(format!(
                "IDX rank {} exceeds 255",
                dims.len()
            )));
        }
        let overflow = || DatasetError::SizeOverflow {
            path: path.to_path_buf(),
            dims: dims.to_vec(),
        };
        let mut elements: usize = 1;
        let mut udims = Vec::with_capacity(dims.len());
        for &d in dims {
            let d = usize::try_from(d).map_err(|_| overflow())?;
            elements = elements.checked_mul(d).ok_or_else(overflow)?;
            udims.push(d);
        }
        let header_len = 4 + 4 * dims.len();
        let file_len = elements
            .checked_mul(element_type.size())
            .and_then(|b| b.checked_add(header_len))
            .ok_or_else(overflow)?;
        // Lengths are compared as u64 with file lengths; usize fits on every supported target.
        let file_len = u64::try_from(file_len).map_err(|_| overflow())?;
        Ok(Self {
            element_type,
            dims: udims,
            elements,
            file_len,
        })
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        self.element_type
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Number of elements (product of the dimensions; 1 for rank 0).
    pub fn len(&self) -> usize {
        self.elements
    }

    /// Whether the data holds no element.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// Length of the header in bytes: `4 + 4 · rank`.
    pub fn header_len(&self) -> usize {
        4 + 4 * self.dims.len()
    }

    /// Length of the data section in bytes.
    pub fn data_len(&self) -> usize {
        // Cannot overflow: checked when the header was built.
        self.elements * self.element_type.size()
    }

    /// Length of the whole file (header plus data) in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The header encoded as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len());
        out.extend_from_slice(&[0, 0, self.element_type.code(), self.dims.len() as u8]);
        for &d in &self.dims {
            // Each dimension came from a u32.
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out
    }

    fn dims_u32(&self) -> Vec<u32> {
        self.dims.iter().map(|&d| d as u32).collect()
    }

    /// Checks that a file of `actual` bytes holds exactly this header's data.
    ///
    /// # Errors
    /// [`DatasetError::Truncated`] if `actual` is short, [`DatasetError::TrailingBytes`] if it
    /// is long.
    pub fn check_len(&self, actual: u64, path: &Path) -> Result<()> {
        if actual < self.file_len {
            Err(DatasetError::Truncated {
                path: path.to_path_buf(),
                dims: self.dims_u32(),
                expected: self.file_len,
                actual,
            })
        } else if actual > self.file_len {
            Err(DatasetError::TrailingBytes {
                path: path.to_path_buf(),
                dims: self.dims_u32(),
                expected: self.file_len,
                extra: actual - self.file_len,
            })
        } else {
            Ok(())
        }
    }
}
