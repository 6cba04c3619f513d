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
	spare    [][]float32 // image buffers out of the pool, reused for new images
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
			p.images = append(p.images, p.copyOf(image))
			copy(target, image)
			edits = append(edits, poolEdit{appended: true})
		case rng.Float64() > 0.5:
			slot := rng.IntN(p.capacity)
			old := p.images[slot]
			copy(target, old)
			p.images[slot] = p.copyOf(image)
			edits = append(edits, poolEdit{slot: slot, old: old})
		default:
			copy(target, image)
		}
	}
	return edits
}

// copyOf returns a copy of image, in a spare buffer if there is one.
func (p *imagePool) copyOf(image []float32) []float32 {
	if n := len(p.spare); n > 0 {
		buf := p.spare[n-1]
		p.spare = p.spare[:n-1]
		copy(buf, image)
		return buf
	}
	return append([]float32(nil), image...)
}

// undo reverts edits returned by query, newest first.
func (p *imagePool) undo(edits []poolEdit) {
	for i := len(edits) - 1; i >= 0; i-- {
		last := len(p.images) - 1
		if edits[i].appended {
			p.spare = append(p.spare, p.images[last])
			p.images = p.images[:last]
		} else {
			p.spare = append(p.spare, p.images[edits[i].slot])
			p.images[edits[i].slot] = edits[i].old
		}
	}
}

// commit keeps edits returned by query for good: the images they replaced become spare
// buffers, so that a full pool allocates no new image memory per step.
func (p *imagePool) commit(edits []poolEdit) {
	for _, e := range edits {
		if !e.appended {
			p.spare = append(p.spare, e.old)
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
