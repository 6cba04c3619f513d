// Package model builds, trains, saves and loads a CycleGAN with gorgonia.
//
// A CycleGAN learns two image translators without paired examples: the
// generator G_A maps domain A to domain B and G_B maps B to A, while the
// discriminators D_A (judging images of B) and D_B (judging images of A)
// learn to tell real images from generated ones. The networks are those of
// the reference PyTorch CycleGAN: ResNet generators with reflection padding
// and instance norm, and 70×70 PatchGAN discriminators. The script
// testdata/parity/make_fixture.py builds them in PyTorch, and the tests
// check that outputs, losses, gradients and one Adam step agree. The layer
// ops come from package model/ops.
//
// The trainer stage drives a [CycleGAN] one batch at a time with
// [CycleGAN.Step], which runs the generator update (with the discriminators
// frozen) and the discriminator update (on fakes drawn through an image
// pool), with Adam and a linearly decaying learning rate. [CycleGAN.Checkpoint]
// writes the whole training state as safetensors, and [Resume] rebuilds it
// from those bytes alone, so a resumed run continues exactly where it stopped.
// The evaluator and the translate command load only the generators with
// [LoadTranslator].
//
// Images are float32 NCHW tensors with 3 channels and pixels in [-1, 1].
//
// # Memory
//
// A CycleGAN keeps its weights, their gradients, both Adam moments, the image
// pools and the values of one step that the backward pass needs: a live heap
// of about 150 MB at the cpu preset and 340 MB at 128 px once the pools are
// full (Go 1.26, measured with GODEBUG=gctrace=1). A step allocates under
// 1 MB of garbage, but with the default GOGC of 100 the heap still grows
// towards twice the live heap until a collection, which the runtime forces at
// the latest every two minutes. A trainer that must stay small can lower GOGC
// (debug.SetGCPercent): the heap is mostly pointer-free float32 arrays, so a
// collection takes about 10 to 30 ms, most of it concurrent with the step.
package model
