package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// validCheckpoint returns the checkpoint of a tiny model after two steps,
// so both pools hold images.
func validCheckpoint(t *testing.T) []byte {
	t.Helper()
	m := newTestModel(t, tinyConfig(), 1)
	trainSteps(t, m, newTestRand(5), 2)
	return modelState(t, m)
}

// editHeader rewrites the JSON header of a safetensors file, keeping its data.
func editHeader(t *testing.T, file []byte, edit func(header map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var header map[string]any
	if err := json.Unmarshal(file[8:8+n], &header); err != nil {
		t.Fatalf("parse header: %v", err)
	}
	edit(header)
	encoded, err := json.Marshal(header)
	if err != nil {
		t.Fatalf("encode header: %v", err)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(encoded)))
	out = append(out, encoded...)
	return append(out, file[8+n:]...)
}

// editTensors decodes a file, edits its tensors and metadata, and encodes it again.
func editTensors(t *testing.T, file []byte, edit func(tensors map[string]namedTensor, metadata map[string]string)) []byte {
	t.Helper()
	tensors, metadata, err := decodeSafetensors(file)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	edit(tensors, metadata)
	out, err := encodeSafetensors(tensors, metadata)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return out
}

func entry(header map[string]any, name string) map[string]any {
	return header[name].(map[string]any)
}

func editConfig(t *testing.T, metadata map[string]string, edit func(map[string]any)) {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal([]byte(metadata[metaConfig]), &cfg); err != nil {
		t.Fatalf("parse config: %v", err)
	}
	edit(cfg)
	encoded, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}
	metadata[metaConfig] = string(encoded)
}

func TestResumeRejectsBadFiles(t *testing.T) {
	valid := validCheckpoint(t)
	const weight = "G_A.model.1.weight" // [8, 3, 7, 7]
	// generators marks the defects that LoadTranslator, which reads only
	// the generators, must reject too.
	cases := []struct {
		name       string
		file       func() []byte
		message    string
		generators bool
	}{
		{"empty", func() []byte { return nil }, "shorter than the 8-byte header length", true},
		{"truncated header", func() []byte { return valid[:100] }, "exceeds the 92 bytes after it", true},
		{"truncated data", func() []byte { return valid[:len(valid)-10] }, "outside the", true},
		{"huge header length", func() []byte {
			file := append([]byte(nil), valid...)
			binary.LittleEndian.PutUint64(file, 1<<40)
			return file
		}, "exceeds the maximum of 16777216 bytes", true},
		{"header not JSON", func() []byte {
			file := append([]byte(nil), valid...)
			file[8] = '['
			return file
		}, "header is not a JSON object", true},
		{"overlapping offsets", func() []byte {
			return editHeader(t, valid, func(h map[string]any) {
				a, b := entry(h, "D_A.model.0.bias"), entry(h, "D_A.model.11.bias")
				// Same length (8 values, 32 bytes), shifted onto the other's start.
				start := b["data_offsets"].([]any)[0].(float64)
				a["data_offsets"] = []any{start, start + 32}
			})
		}, "overlaps", true},
		{"offsets not matching shape", func() []byte {
			return editHeader(t, valid, func(h map[string]any) { entry(h, weight)["shape"] = []any{8, 3, 7, 6} })
		}, "needs", true},
		{"negative dimension", func() []byte {
			return editHeader(t, valid, func(h map[string]any) { entry(h, weight)["shape"] = []any{-8, 3, 7, 7} })
		}, "invalid shape", true},
		{"wrong dtype", func() []byte {
			return editHeader(t, valid, func(h map[string]any) { entry(h, weight)["dtype"] = "F64" })
		}, `dtype "F64", want F32`, true},
		{"unknown header field", func() []byte {
			return editHeader(t, valid, func(h map[string]any) { entry(h, weight)["scale"] = 2 })
		}, "invalid header entry", true},
		{"wrong shape", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) {
				ts[weight] = namedTensor{shape: []int{3, 8, 7, 7}, data: ts[weight].data}
			})
		}, "tensor G_A.model.1.weight has shape [3 8 7 7], the config needs [8 3 7 7]", true},
		{"missing weight", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) { delete(ts, "D_B.model.8.weight") })
		}, "tensor D_B.model.8.weight is missing", false},
		{"missing moment", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) { delete(ts, "adam.v.G_B.model.4.bias") })
		}, "tensor adam.v.G_B.model.4.bias is missing", false},
		{"missing pool", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) { delete(ts, poolATensor) })
		}, "tensor pool.A is missing", false},
		{"unknown tensor", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) {
				ts["G_A.model.99.weight"] = namedTensor{shape: []int{1}, data: []float32{0}}
			})
		}, "unknown tensor G_A.model.99.weight", true},
		{"NaN weight", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) {
				ts[weight].data[5] = float32(math.NaN())
			})
		}, "tensor G_A.model.1.weight has the non-finite value NaN at index 5", true},
		{"infinite moment", func() []byte {
			return editTensors(t, valid, func(ts map[string]namedTensor, _ map[string]string) {
				ts["adam.m."+weight].data[0] = float32(math.Inf(1))
			})
		}, "non-finite value +Inf", false},
		{"pool count mismatch", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { md[metaPoolBCount] = "1" })
		}, "tensor pool.B has shape [2 3 32 32], the config needs [1 3 32 32]", false},
		{"pool count above pool size", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { md[metaPoolACount] = "51" })
		}, `pool.A.count (pool A size) is "51"`, false},
		{"step not a number", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { md[metaStep] = "two" })
		}, `metadata step (step) is "two"`, false},
		{"epoch mismatch", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { md[metaEpoch] = "3" })
		}, "metadata epoch = 3, but step 2 is in epoch 0", false},
		{"rng garbage", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { md[metaRNG] = "AAAA" })
		}, "metadata rng", false},
		{"missing format", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { delete(md, metaFormat) })
		}, `metadata format is "", want "cyclegan-checkpoint-1"`, true},
		{"missing config", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) { delete(md, metaConfig) })
		}, "metadata config is missing", true},
		{"unknown config field", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) {
				editConfig(t, md, func(c map[string]any) { c["norm"] = "batch" })
			})
		}, `unknown field "norm"`, true},
		{"invalid config value", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) {
				editConfig(t, md, func(c map[string]any) { c["crop_size"] = 30 })
			})
		}, "crop_size 30 must be a multiple of 4", true},
		{"config of another size", func() []byte {
			return editTensors(t, valid, func(_ map[string]namedTensor, md map[string]string) {
				editConfig(t, md, func(c map[string]any) { c["ngf"] = 16 })
			})
		}, "the config needs", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Resume(c.file())
			if err == nil {
				m.Close()
				t.Fatal("Resume accepted the file")
			}
			if !errors.Is(err, ErrInvalidCheckpoint) {
				t.Errorf("error = %v, want ErrInvalidCheckpoint", err)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Errorf("error %q does not contain %q", err, c.message)
			}
			translator, err := LoadTranslator(c.file())
			if c.generators && err == nil {
				t.Error("LoadTranslator accepted the file")
			}
			if !c.generators && err != nil {
				t.Errorf("LoadTranslator rejected a defect outside the generators: %v", err)
			}
			if translator != nil {
				translator.Close()
			}
		})
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	tensors := map[string]namedTensor{
		"b":     {shape: []int{2, 2}, data: []float32{1, -2, 3.5, float32(math.SmallestNonzeroFloat32)}},
		"a":     {shape: []int{3}, data: []float32{0, 1, 2}},
		"empty": {shape: []int{0, 3}, data: nil},
	}
	metadata := map[string]string{"note": "π ≈ 3.14"}
	file, err := encodeSafetensors(tensors, metadata)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if n := binary.LittleEndian.Uint64(file); (8+n)%8 != 0 {
		t.Errorf("data starts at byte %d, want a multiple of 8", 8+n)
	}
	got, gotMetadata, err := decodeSafetensors(file)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if gotMetadata["note"] != metadata["note"] {
		t.Errorf("metadata = %v", gotMetadata)
	}
	for name, want := range tensors {
		g := got[name]
		if !equalShapes(g.shape, want.shape) || len(g.data) != len(want.data) {
			t.Errorf("%s: shape %v, %d values", name, g.shape, len(g.data))
			continue
		}
		for i := range want.data {
			if g.data[i] != want.data[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, g.data[i], want.data[i])
			}
		}
	}
	if _, err := encodeSafetensors(map[string]namedTensor{"x": {shape: []int{2}, data: []float32{1}}}, nil); err == nil {
		t.Error("encode accepted a shape that does not match the data")
	}
}

// The checkpoint keys must be those of the reference PyTorch state dicts.
func TestCheckpointNamesMatchFixture(t *testing.T) {
	fixture := loadParityFixture(t)
	cfg := parityConfig()
	for _, network := range networkNames {
		for _, spec := range networkWeights(cfg, network) {
			f, ok := fixture[spec.name]
			if !ok {
				t.Errorf("%s is not a PyTorch state-dict key", spec.name)
				continue
			}
			if !equalShapes(f.shape, spec.shape) {
				t.Errorf("%s: shape %v, PyTorch %v", spec.name, spec.shape, f.shape)
			}
		}
	}
	count := 0
	for name := range fixture {
		if strings.HasPrefix(name, "G_") || strings.HasPrefix(name, "D_") {
			count++
		}
	}
	if want := len(expectedTensors(cfg)) / 3; count != want {
		t.Errorf("PyTorch has %d weights, the model %d", count, want)
	}
}

func TestCheckpointMetadata(t *testing.T) {
	_, metadata, err := decodeSafetensors(validCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		metaFormat: checkpointFormat, metaStep: "2", metaEpoch: "0", metaLearningRate: "0.0002",
		metaAdamGStep: "2", metaAdamDStep: "2", metaPoolACount: "2", metaPoolBCount: "2", metaNonFiniteStreak: "0",
	}
	for key, value := range want {
		if metadata[key] != value {
			t.Errorf("metadata %s = %q, want %q", key, metadata[key], value)
		}
	}
	if metadata[metaRNG] == "" || !strings.Contains(metadata[metaConfig], `"crop_size":32`) {
		t.Errorf("metadata rng %q, config %q", metadata[metaRNG], metadata[metaConfig])
	}
}
