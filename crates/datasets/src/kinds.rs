//! The small vocabularies every other module shares: an IDX file's element type, the dataset
//! kind and the split. This module depends on nothing else of the crate, so `error` can name them
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

/// Which dataset a folder holds; both have 28×28 grey images in 10 classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetKind {
    /// Handwritten digits: the MNIST database by Yann LeCun, Corinna Cortes and Christopher J. C.
    /// Burges.
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST (Han Xiao, Kashif Rasul and Roland Vollgraf): clothing images.
    FashionMnist,
}

impl DatasetKind {
    /// Number of classes (10 for both).
    pub fn num_classes(self) -> usize {
        10
    }

    /// Image height and width of the published files (28 × 28 for both).
    pub fn image_shape(self) -> (usize, usize) {
        (28, 28)
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// SHA-256 digests of the four published files, decompressed, in the `sha256sum` format.
    pub fn published_sums(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
"
            }
            DatasetKind::FashionMnist => {
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b  t10k-images-idx3-ubyte
0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34  t10k-labels-idx1-ubyte
c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888  train-images-idx3-ubyte
bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9  train-labels-idx1-ubyte
"
            }
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Mnist => "MNIST",
            DatasetKind::FashionMnist => "Fashion-MNIST",
        })
    }
}
