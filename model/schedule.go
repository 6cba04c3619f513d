package model

// Epoch returns the 0-based epoch that training step `step` (counting
// applied updates from 0) falls in: ⌊step · batch_size / dataset_size⌋.
func (c Config) Epoch(step int64) int64 {
	if c.DatasetSize < 1 {
		return 0
	}
	return step * int64(c.BatchSize) / int64(c.DatasetSize)
}

// LearningRateAt returns the learning rate for the 0-based epoch e:
//
//	lr(e) = lr0 · max(0, 1 − max(0, e + 1 − epochs) / (epochs_decay + 1))
//
// It is lr0 for the first `epochs` epochs, then falls linearly by
// lr0/(epochs_decay+1) per epoch, reaching lr0/(epochs_decay+1) in the
// last scheduled epoch (e = epochs + epochs_decay − 1) and 0 from the epoch
// after it on. This is the linear rule of the reference PyTorch
// implementation, whose scheduler steps once per epoch.
func (c Config) LearningRateAt(epoch int64) float64 {
	decayed := max(0, epoch+1-int64(c.Epochs))
	factor := 1 - float64(decayed)/float64(c.EpochsDecay+1)
	return c.LearningRate * max(0, factor)
}
