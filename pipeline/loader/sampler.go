package loader

import (
	"fmt"
	"math/rand/v2"
)

// Sampler draws unaligned (A, B) pairs the way the reference CycleGAN's unaligned dataset
// does. An epoch is max(|A|, |B|) pairs. Within an epoch the pair slots are visited in a
// random permutation, slot k taking A image k mod |A|, so every A image appears once per
// epoch when |A| is the larger domain. The B image is drawn uniformly and independently for
// every pair.
//
// The permutation and the B draws of epoch e come from PCG streams keyed only by the seed
// and e. So a Sampler started at pair index i (NewSampler's start) returns the same pairs
// as a Sampler started at 0 returns from its i-th call on. A Sampler is not safe for
// concurrent use.
type Sampler struct {
	sizeA, sizeB int
	perEpoch     int
	seed         uint64

	next  int64      // global index of the pair Next returns
	epoch int        // epoch that perm and drawB belong to
	perm  []int      // slot order of epoch
	drawB *rand.Rand // B draws of epoch, advanced to next
}

// NewSampler returns a Sampler over domains of sizeA and sizeB images whose first pair is
// the pair with global index start (0 for a fresh run).
func NewSampler(sizeA, sizeB int, seed uint64, start int64) (*Sampler, error) {
	if sizeA <= 0 || sizeB <= 0 {
		return nil, fmt.Errorf("domain sizes %d and %d must be positive: %w", sizeA, sizeB, ErrInvalidSampler)
	}
	if start < 0 {
		return nil, fmt.Errorf("start pair index %d is negative: %w", start, ErrInvalidSampler)
	}
	s := &Sampler{sizeA: sizeA, sizeB: sizeB, perEpoch: max(sizeA, sizeB), seed: seed, next: start}
	s.startEpoch(int(start / int64(s.perEpoch)))

	// Replay the B draws made before start in its epoch, at most one epoch of draws.
	for range start % int64(s.perEpoch) {
		s.drawB.IntN(s.sizeB)
	}
	return s, nil
}

// PCG stream keys per epoch. The low bit separates the permutation from the B draws.
func permStream(epoch int) uint64  { return uint64(epoch) << 1 }
func drawBStream(epoch int) uint64 { return uint64(epoch)<<1 | 1 }

func (s *Sampler) startEpoch(epoch int) {
	s.epoch = epoch
	s.perm = rand.New(rand.NewPCG(s.seed, permStream(epoch))).Perm(s.perEpoch)
	s.drawB = rand.New(rand.NewPCG(s.seed, drawBStream(epoch)))
}

// Next returns the indices of the next pair and the epoch it belongs to, counted from 0.
func (s *Sampler) Next() (idxA, idxB, epoch int) {
	epoch = int(s.next / int64(s.perEpoch))
	if epoch != s.epoch {
		s.startEpoch(epoch)
	}
	slot := s.perm[s.next%int64(s.perEpoch)]
	idxA = slot % s.sizeA
	idxB = s.drawB.IntN(s.sizeB)
	s.next++
	return idxA, idxB, epoch
}

// Position returns the global index of the pair that Next returns next. Passing it as
// NewSampler's start resumes the sequence there.
func (s *Sampler) Position() int64 { return s.next }

// PairsPerEpoch returns max(|A|, |B|).
func (s *Sampler) PairsPerEpoch() int { return s.perEpoch }
