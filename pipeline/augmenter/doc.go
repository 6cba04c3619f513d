// Package augmenter is the augmenter stage. It takes raw pairs from the raw stream and
// crops each image at a random offset to the crop size. It mirrors each crop left to
// right with probability one half and publishes the result as a train pair for the
// trainer.
//
// Every augmenter process binds to the raw stream's shared durable consumer, so the
// server hands each raw pair to one of them, and a raw pair is acked only after its
// train pair is stored. The crops and flips of a pair come from a PCG random source
// seeded with the configured seed and the pair's sequence number, so they do not depend
// on which process handles the pair, in what order, or how often.
package augmenter
