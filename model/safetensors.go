package model

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
)

// The safetensors format: an 8-byte little-endian header length n, n bytes
// of JSON mapping each tensor name to {"dtype", "shape", "data_offsets"}
// (byte offsets [begin, end) into the data that follows the header) plus an
// optional "__metadata__" object of string values, then the raw
// little-endian tensor data. This package writes and reads float32 ("F32")
// tensors only.

// maxHeaderBytes bounds the JSON header a reader accepts, so a corrupt
// length cannot make it allocate gigabytes.
const maxHeaderBytes = 16 << 20

const metadataKey = "__metadata__"

// namedTensor is a float32 tensor with its shape, as stored in a file.
type namedTensor struct {
	shape []int
	data  []float32
}

type headerEntry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// encodeSafetensors writes tensors (in name order) and metadata. Each
// tensor's data length must equal the product of its shape.
func encodeSafetensors(tensors map[string]namedTensor, metadata map[string]string) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for name := range tensors {
		names = append(names, name)
	}
	sort.Strings(names)

	header := make(map[string]any, len(tensors)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var offset int64
	for _, name := range names {
		t := tensors[name]
		if n := shapeSize(t.shape); n != len(t.data) {
			return nil, fmt.Errorf("tensor %s: shape %v holds %d values, data has %d", name, t.shape, n, len(t.data))
		}
		size := int64(4 * len(t.data))
		header[name] = headerEntry{Dtype: "F32", Shape: t.shape, DataOffsets: [2]int64{offset, offset + size}}
		offset += size
	}
	headerJSON, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("encode safetensors header: %w", err)
	}
	// Spaces after the JSON are allowed; they align the data to 8 bytes.
	headerJSON = append(headerJSON, bytes.Repeat([]byte{' '}, (8-len(headerJSON)%8)%8)...)

	out := make([]byte, 8+len(headerJSON), 8+int64(len(headerJSON))+offset)
	binary.LittleEndian.PutUint64(out, uint64(len(headerJSON)))
	copy(out[8:], headerJSON)
	for _, name := range names {
		for _, v := range tensors[name].data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// decodeSafetensors parses a safetensors file. It rejects, with an error
// wrapping ErrInvalidCheckpoint, a header longer than maxHeaderBytes or than
// the file, malformed JSON, a dtype other than F32, negative dimensions,
// offsets outside the data or not matching the shape, overlapping tensors
// and bytes not covered by any tensor. Allocation is bounded by len(file).
func decodeSafetensors(file []byte) (map[string]namedTensor, map[string]string, error) {
	if len(file) < 8 {
		return nil, nil, fmt.Errorf("%w: %d bytes is shorter than the 8-byte header length", ErrInvalidCheckpoint, len(file))
	}
	headerLen := binary.LittleEndian.Uint64(file)
	if headerLen > maxHeaderBytes {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds the maximum of %d bytes", ErrInvalidCheckpoint, headerLen, maxHeaderBytes)
	}
	if headerLen > uint64(len(file)-8) {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds the %d bytes after it (truncated file?)", ErrInvalidCheckpoint, headerLen, len(file)-8)
	}
	data := file[8+headerLen:]

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(file[8:8+headerLen], &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: header is not a JSON object: %w", ErrInvalidCheckpoint, err)
	}
	metadata := map[string]string{}
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &metadata); err != nil {
			return nil, nil, fmt.Errorf("%w: %s is not an object of strings: %w", ErrInvalidCheckpoint, metadataKey, err)
		}
		delete(raw, metadataKey)
	}

	type span struct {
		name       string
		begin, end int64
	}
	spans := make([]span, 0, len(raw))
	entries := make(map[string]headerEntry, len(raw))
	for name, message := range raw {
		var e headerEntry
		decoder := json.NewDecoder(bytes.NewReader(message))
		decoder.DisallowUnknownFields()
		if err := decoder.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("%w: tensor %s: invalid header entry: %w", ErrInvalidCheckpoint, name, err)
		}
		if e.Dtype != "F32" {
			return nil, nil, fmt.Errorf("%w: tensor %s has dtype %q, want F32", ErrInvalidCheckpoint, name, e.Dtype)
		}
		elements := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elements > int64(len(data))/int64(d)) {
				return nil, nil, fmt.Errorf("%w: tensor %s has invalid shape %v for %d data bytes", ErrInvalidCheckpoint, name, e.Shape, len(data))
			}
			elements *= int64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) {
			return nil, nil, fmt.Errorf("%w: tensor %s has data offsets [%d, %d] outside the %d data bytes", ErrInvalidCheckpoint, name, begin, end, len(data))
		}
		if end-begin != 4*elements {
			return nil, nil, fmt.Errorf("%w: tensor %s has %d data bytes, shape %v needs %d", ErrInvalidCheckpoint, name, end-begin, e.Shape, 4*elements)
		}
		entries[name] = e
		spans = append(spans, span{name, begin, end})
	}

	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, nil, fmt.Errorf("%w: tensor %s overlaps tensor %s", ErrInvalidCheckpoint, spans[i].name, spans[i-1].name)
		}
	}
	var covered int64
	for _, s := range spans {
		if s.begin > covered {
			return nil, nil, fmt.Errorf("%w: data bytes [%d, %d) before tensor %s belong to no tensor", ErrInvalidCheckpoint, covered, s.begin, s.name)
		}
		covered = s.end
	}
	if covered != int64(len(data)) {
		return nil, nil, fmt.Errorf("%w: data bytes [%d, %d) at the end belong to no tensor", ErrInvalidCheckpoint, covered, len(data))
	}

	tensors := make(map[string]namedTensor, len(entries))
	for name, e := range entries {
		raw := data[e.DataOffsets[0]:e.DataOffsets[1]]
		values := make([]float32, len(raw)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		tensors[name] = namedTensor{shape: slices.Clone(e.Shape), data: values}
	}
	return tensors, metadata, nil
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
