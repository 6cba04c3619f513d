package trainer

import (
	"context"
	"fmt"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// errStopped is returned by the message handler for a pair that no step
// will use because training stopped. The consumer then hands the message
// back to the stream.
var errStopped = fmt.Errorf("trainer stopped before the pair was trained on: %w", pipeline.ErrHandBack)

// pendingPair is one decoded train pair whose message waits for its ack.
type pendingPair struct {
	pair     *messages.Pair // aliases the message payload, valid until the handler returns
	sequence uint64         // stream sequence, for logs
	done     chan error     // receives the handler's result once; buffered
}

// batcher hands pairs from the consumer's handler goroutines to the
// training loop. Each handler blocks until the loop has trained on its pair
// (or stopped), so the consumer acks a message only after its step. The
// consumer runs more handlers than a batch holds, so the next batch is
// pulled and decoded while a step runs.
type batcher struct {
	cropSize int
	pairs    chan *pendingPair
	stopped  chan struct{} // closed by stop
}

func newBatcher(cropSize int) *batcher {
	return &batcher{
		cropSize: cropSize,
		pairs:    make(chan *pendingPair),
		stopped:  make(chan struct{}),
	}
}

// handle is the consumer's Handler: it decodes and checks a train pair,
// then waits until the training loop sends its result. A message that is not a
// train pair at the crop size is poison: the consumer terminates it, logs
// it with its stream sequence and counts it.
func (b *batcher) handle(ctx context.Context, msg *pipeline.Message) error {
	pair, err := b.decode(msg.Data)
	if err != nil {
		return fmt.Errorf("train pair at stream sequence %d: %w: %w", msg.StreamSequence, pipeline.ErrPoison, err)
	}

	p := &pendingPair{pair: pair, sequence: msg.StreamSequence, done: make(chan error, 1)}
	select {
	case b.pairs <- p:
	case <-b.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decode returns the pair of a train message, or an error when it is not a
// train pair at the model's crop size.
func (b *batcher) decode(data []byte) (*messages.Pair, error) {
	pair, err := messages.DecodePair(data)
	if err != nil {
		return nil, err
	}
	if pair.Kind != messages.KindTrain {
		return nil, fmt.Errorf("pair kind is %s, expected %s", pair.Kind, messages.KindTrain)
	}
	if pair.Height != b.cropSize || pair.Width != b.cropSize {
		return nil, fmt.Errorf("pair is %d×%d pixels, the model trains on %d×%d crops (set the augmenter's crop size to match)",
			pair.Width, pair.Height, b.cropSize, b.cropSize)
	}
	return pair, nil
}

// next waits for n pairs and returns them, or returns the pairs collected
// so far and ctx's error when ctx ends first, or errStopped when the
// consumer stopped (consumerDone closed).
func (b *batcher) next(ctx context.Context, n int, consumerDone <-chan struct{}) ([]*pendingPair, error) {
	batch := make([]*pendingPair, 0, n)
	for len(batch) < n {
		// An ended ctx wins over a pair that is ready too.
		if err := ctx.Err(); err != nil {
			return batch, err
		}
		select {
		case p := <-b.pairs:
			batch = append(batch, p)
		case <-ctx.Done():
			return batch, ctx.Err()
		case <-consumerDone:
			return batch, errStopped
		}
	}
	return batch, nil
}

// stop makes every handler that has not handed over its pair return
// errStopped. Call it once, after the last next.
func (b *batcher) stop() { close(b.stopped) }

// release sends err to each pair's handler. Nil acks the message, and any
// other error hands it back to the stream.
func release(batch []*pendingPair, err error) {
	for _, p := range batch {
		p.done <- err
	}
}

// appendBatch appends the A images and the B images of batch to a and b as
// float32 NCHW in [-1, 1].
func appendBatch(a, b []float32, batch []*pendingPair) ([]float32, []float32, error) {
	var err error
	for _, p := range batch {
		pair := p.pair
		if a, err = messages.AppendFloat32CHW(a, pair.A, pair.Height, pair.Width); err != nil {
			return a, b, fmt.Errorf("convert image A of the pair at stream sequence %d: %w", p.sequence, err)
		}
		if b, err = messages.AppendFloat32CHW(b, pair.B, pair.Height, pair.Width); err != nil {
			return a, b, fmt.Errorf("convert image B of the pair at stream sequence %d: %w", p.sequence, err)
		}
	}
	return a, b, nil
}
