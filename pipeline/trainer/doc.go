// Package trainer is the pipeline stage that trains the CycleGAN.
//
// A Trainer pulls train pairs from the run's train stream through the shared
// durable consumer and assembles batch_size pairs into a float32 NCHW batch
// in [-1, 1]. It runs one model.CycleGAN step on the batch and acks the
// batch's messages only after the step. It owns the schedule: the step counter is the model's
// count of applied updates, the epoch is ⌊step × batch_size / dataset_size⌋,
// and the run ends after --steps steps or after epochs + epochs-decay epochs.
//
// Every checkpoint-every steps, when its context ends and at the end of the
// run, the trainer stores a checkpoint as <run>/step-<n>.safetensors in the
// Object Store, prunes old ones by the retention policy, announces it on the
// checkpoint stream with its SHA-256 digest, records it in the run state and
// writes <output>/<run>/latest.safetensors, then redraws
// <output>/<run>/loss.png from metrics.jsonl. A new Trainer on the same run
// resumes from the checkpoint that the run state names, unless Config.Fresh
// is set.
//
// A step whose loss or gradient is not finite changes nothing and is counted;
// after model.MaxNonFiniteSteps of them in a row the run state becomes failed
// and Run returns an error.
package trainer
