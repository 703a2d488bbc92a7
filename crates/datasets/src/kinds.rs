//! The two small vocabularies every other module shares: an IDX file's element type and the
//! MNIST split. This module depends on nothing else of the crate, so `error` can name them
//! without an import circle.

use std::fmt;

/// The element type of an IDX file, from byte 2 of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// Unsigned byte, code `0x08`.
    U8,
    /// Signed byte, code `0x09`.
    I8,
    /// Big-endian `i16`, code `0x0B`.
    I16,
    /// Big-endian `i32`, code `0x0C`.
    I32,
    /// Big-endian IEEE `f32`, code `0x0D`.
    F32,
    /// Big-endian IEEE `f64`, code `0x0E`.
    F64,
}

impl ElementType {
    /// All element types, in code order.
    pub const ALL: [ElementType; 6] = [
        ElementType::U8,
        ElementType::I8,
        ElementType::I16,
        ElementType::I32,
        ElementType::F32,
        ElementType::F64,
    ];

    /// The type for a header code, or `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => Self::U8,
            0x09 => Self::I8,
            0x0B => Self::I16,
            0x0C => Self::I32,
            0x0D => Self::F32,
            0x0E => Self::F64,
            _ => return None,
        })
    }

    /// The header code of this type.
    pub fn code(self) -> u8 {
        match self {
            Self::U8 => 0x08,
            Self::I8 => 0x09,
            Self::I16 => 0x0B,
            Self::I32 => 0x0C,
            Self::F32 => 0x0D,
            Self::F64 => 0x0E,
        }
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 => 2,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::U8 => "u8",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::F32 => "f32",
            Self::F64 => "f64",
        })
    }
}

/// One of the two standard splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    /// The training split: 60,000 samples.
    Train,
    /// The test split: 10,000 samples.
    Test,
}

impl Split {
    /// Both splits.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// Number of samples in this split of MNIST and of Fashion-MNIST.
    pub fn standard_len(self) -> usize {
        match self {
            Split::Train => 60_000,
            Split::Test => 10_000,
        }
    }

    /// Standard (dash) spelling of the image file name, without `.gz`.
    pub fn image_file_name(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// Standard (dash) spelling of the label file name, without `.gz`.
    pub fn label_file_name(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }

    /// Both spellings of the image file name (dash, then dot), without `.gz`.
    pub fn image_file_names(self) -> [&'static str; 2] {
        match self {
            Split::Train => ["train-images-idx3-ubyte", "train-images.idx3-ubyte"],
            Split::Test => ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"],
        }
    }

    /// Both spellings of the label file name (dash, then dot), without `.gz`.
    pub fn label_file_names(self) -> [&'static str; 2] {
        match self {
            Split::Train => ["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"],
            Split::Test => ["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"],
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "training",
            Split::Test => "test",
        })
    }
}
