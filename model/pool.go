package model

import "math/rand/v2"

// imagePool is the history of generated images that the discriminators
// are trained on, so they also see fakes of earlier generators.
// Until it holds `capacity` images it stores each new image and returns it;
// once full, with probability 0.5 it returns a stored image from a random
// slot and keeps the new one there, else it returns the new image.
type imagePool struct {
	capacity int
	imageLen int         // float32 values per image
	images   [][]float32 // stored images, len(images) ≤ capacity
}

// poolEdit records one change to a pool so that a skipped step can undo it.
type poolEdit struct {
	appended bool      // the image was appended, so undo removes the last slot
	slot     int       // else the slot that was overwritten
	old      []float32 // and its previous content
}

func newImagePool(capacity, imageLen int) *imagePool {
	return &imagePool{capacity: capacity, imageLen: imageLen}
}

// query passes every image of batch (len = k·imageLen) through the pool,
// writing the images for the discriminator into out (same length), and
// returns the edits made, newest last.
func (p *imagePool) query(rng *rand.Rand, batch, out []float32, edits []poolEdit) []poolEdit {
	for start := 0; start < len(batch); start += p.imageLen {
		image := batch[start : start+p.imageLen]
		target := out[start : start+p.imageLen]
		switch {
		case p.capacity == 0:
			copy(target, image)
		case len(p.images) < p.capacity:
			p.images = append(p.images, append([]float32(nil), image...))
			copy(target, image)
			edits = append(edits, poolEdit{appended: true})
		case rng.Float64() > 0.5:
			slot := rng.IntN(p.capacity)
			old := p.images[slot]
			copy(target, old)
			p.images[slot] = append([]float32(nil), image...)
			edits = append(edits, poolEdit{slot: slot, old: old})
		default:
			copy(target, image)
		}
	}
	return edits
}

// undo reverts edits returned by query, newest first.
func (p *imagePool) undo(edits []poolEdit) {
	for i := len(edits) - 1; i >= 0; i-- {
		if edits[i].appended {
			p.images = p.images[:len(p.images)-1]
		} else {
			p.images[edits[i].slot] = edits[i].old
		}
	}
}

// flat returns the stored images as one slice of len(images)·imageLen.
func (p *imagePool) flat() []float32 {
	out := make([]float32, 0, len(p.images)*p.imageLen)
	for _, image := range p.images {
		out = append(out, image...)
	}
	return out
}

// restore replaces the stored images with those in data, which holds a
// whole number of images, at most capacity.
func (p *imagePool) restore(data []float32) {
	p.images = p.images[:0]
	for start := 0; start < len(data); start += p.imageLen {
		p.images = append(p.images, append([]float32(nil), data[start:start+p.imageLen]...))
	}
}
