package model

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestImagePoolFillsThenSwaps(t *testing.T) {
	const capacity, imageLen = 3, 2
	p := newImagePool(capacity, imageLen)
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]float32, imageLen)

	// Filling: every image is stored and returned as is.
	for i := range capacity {
		image := []float32{float32(i), float32(i)}
		p.query(rng, image, out, nil)
		if !slices.Equal(out, image) {
			t.Fatalf("fill %d returned %v, want the new image %v", i, out, image)
		}
	}
	if len(p.images) != capacity {
		t.Fatalf("pool holds %d images, want %d", len(p.images), capacity)
	}

	// Full: about half the queries return a stored image and keep the new one.
	swapped, kept := 0, 0
	for i := range 400 {
		image := []float32{float32(100 + i), float32(100 + i)}
		before := slices.Clone(p.flat())
		p.query(rng, image, out, nil)
		switch {
		case slices.Equal(out, image):
			kept++
			if !slices.Equal(p.flat(), before) {
				t.Fatalf("query %d returned the new image but changed the pool", i)
			}
		case slices.Contains(p.flat(), image[0]):
			swapped++
			if !slices.Contains(before, out[0]) {
				t.Fatalf("query %d returned %v, which was not stored", i, out)
			}
		default:
			t.Fatalf("query %d returned %v and did not store the new image", i, out)
		}
	}
	if swapped < 150 || kept < 150 {
		t.Errorf("swapped %d and kept %d of 400 queries, want about half each", swapped, kept)
	}
}

func TestImagePoolDisabled(t *testing.T) {
	p := newImagePool(0, 2)
	out := make([]float32, 4)
	batch := []float32{1, 2, 3, 4}
	edits := p.query(rand.New(rand.NewPCG(1, 1)), batch, out, nil)
	if !slices.Equal(out, batch) || len(p.images) != 0 || len(edits) != 0 {
		t.Errorf("disabled pool returned %v, holds %d images, %d edits", out, len(p.images), len(edits))
	}
}

// Undo must restore the pool exactly, for both appended and swapped images.
func TestImagePoolUndo(t *testing.T) {
	const capacity, imageLen = 4, 3
	p := newImagePool(capacity, imageLen)
	rng := rand.New(rand.NewPCG(3, 4))
	batch := make([]float32, 2*imageLen) // two images per query
	out := make([]float32, len(batch))
	for step := range 20 {
		for i := range batch {
			batch[i] = float32(step*10 + i)
		}
		before := slices.Clone(p.flat())
		edits := p.query(rng, batch, out, nil)
		p.undo(edits)
		if !slices.Equal(p.flat(), before) {
			t.Fatalf("step %d: undo left %v, want %v", step, p.flat(), before)
		}
		p.query(rng, batch, out, nil)
	}
	if len(p.images) != capacity {
		t.Errorf("pool holds %d images, want %d", len(p.images), capacity)
	}
}

// A full pool reuses the buffers of the images it drops, and a committed or undone query
// leaves the pool's contents as query and undo define them.
func TestImagePoolReusesBuffers(t *testing.T) {
	const capacity, imageLen = 2, 3
	p := newImagePool(capacity, imageLen)
	rng := rand.New(rand.NewPCG(5, 6))
	batch := make([]float32, imageLen)
	out := make([]float32, imageLen)
	buffers := map[*float32]bool{} // every buffer that held a pool image
	for step := range 40 {
		for _, image := range p.images {
			buffers[&image[0]] = true
		}
		for i := range batch {
			batch[i] = float32(step*10 + i)
		}
		before := slices.Clone(p.flat())
		edits := p.query(rng, batch, out, nil)
		if step%3 == 0 {
			p.undo(edits)
			if !slices.Equal(p.flat(), before) {
				t.Fatalf("step %d: undo left %v, want %v", step, p.flat(), before)
			}
			continue
		}
		p.commit(edits)
	}
	// One image per query: the stored images and the one in flight are all the buffers
	// a pool that reuses them ever needs, although it swapped images many times.
	if len(buffers) > capacity+1 {
		t.Errorf("pool images used %d buffers, want at most %d", len(buffers), capacity+1)
	}
	for i, a := range p.images {
		for _, b := range p.images[i+1:] {
			if &a[0] == &b[0] {
				t.Fatal("two pool slots share one buffer")
			}
		}
		for _, b := range p.spare {
			if &a[0] == &b[0] {
				t.Fatal("a pool slot's buffer is also spare")
			}
		}
	}
}
