// Package messages defines the wire formats that the pipeline stages exchange
// over NATS JetStream, with encoders, decoders and validation.
//
// There are three message types:
//
//   - Pair: one unaligned pair of 8-bit RGB images (A from domain A, B from
//     domain B) in a binary format. A raw pair goes from the loader to the
//     augmenters at the load size. A train pair goes from an augmenter to the
//     trainer at the crop size and records the crop offset and horizontal
//     flip applied to each image. The payload is a 48-byte little-endian
//     header (magic "CGPR", version, kind, element type, channels, string
//     lengths, epoch, sequence, sizes, crops, flips, image length), then the
//     run id and the two image names, then A's pixels, then B's pixels. Pixels
//     are row-major with interleaved channels (HWC, RGB). A pair of 286×286
//     images encodes to about 491 KB, under the 1 MiB default max payload of
//     a NATS server.
//   - Checkpoint: the announcement of a checkpoint stored in the Object Store
//     (run, step, epoch, object name, size, SHA-256, created time), as
//     compact JSON.
//   - EvalReport: the evaluator's metrics for one checkpoint, with the paths of
//     the sample images it wrote, as compact JSON.
//
// README.md in the package directory documents every format byte by byte
// for stages written in other languages.
//
// Encoders validate before they encode, and decoders validate everything
// they read: a decoded message always passes Validate, and encoding it
// again gives an equivalent message (for a pair, the same bytes). Errors are
// *FieldError values that name the message type, the field and the value,
// and wrap one sentinel error (ErrMagic, ErrVersion, ErrTruncated,
// ErrTooLarge, ErrDimensions, ErrField, ErrMalformed) for errors.Is.
// CheckPayloadSize compares a message's size with the server's max payload
// before publishing, and Pair.EncodedSize gives that size without encoding.
//
// DecodePair does not copy pixels: the pair's A and B alias the payload.
//
// Helpers convert a pair's pixels to and from image.Image (NRGBAFromHWC,
// AppendHWCFromImage) and to float32 CHW in [-1, 1], v/127.5 - 1, for the
// networks (AppendFloat32CHW, AppendUint8HWC for the way back).
// AppendCropFlip applies an augmenter's crop and flip.
package messages
