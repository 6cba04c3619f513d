package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gocyclegan/cyclegan/messages"
	"github.com/gocyclegan/cyclegan/pipeline"
)

// errRunEnded is the cause of stopping the loader when the run state is finished or
// failed.
var errRunEnded = errors.New("run ended")

// resumeIndex returns the global index of the first pair to publish. That is the number
// of pairs the trainer has consumed (its step times the batch size), or the index after
// the newest pair still in the raw or train stream when that is later. So a restarted
// loader neither repeats the pairs waiting there nor leaves a gap. It returns an error
// wrapping errRunEnded when the run state is finished or failed.
func (s *Stage) resumeIndex(ctx context.Context, store *pipeline.RunStore) (int64, error) {
	var trainerPairs int64
	state, _, err := store.Get(ctx)
	switch {
	case errors.Is(err, pipeline.ErrRunStateNotFound):
		// No trainer has written the state yet: a new run.
	case err != nil:
		return 0, fmt.Errorf("read run state to resume from: %w", err)
	case state.Status.Final():
		return 0, fmt.Errorf("%w: run %s is %s", errRunEnded, s.run, state.Status)
	default:
		trainerPairs = pairsConsumed(state.Step, s.cfg.BatchSize)
	}

	start := trainerPairs
	last, found := s.lastStreamSequence(ctx)
	if found && last < math.MaxInt64 && int64(last)+1 > start {
		start = int64(last) + 1
	}
	if start > 0 {
		attrs := []any{"start_pair", start, "trainer_step", state.Step, "batch_size", s.cfg.BatchSize}
		if found {
			attrs = append(attrs, "newest_sequence_in_streams", last)
		}
		s.log.Info("loader resuming", attrs...)
	}
	return start, nil
}

// pairsConsumed returns step×batchSize, capped at math.MaxInt64.
func pairsConsumed(step uint64, batchSize int) int64 {
	if step > math.MaxInt64/uint64(batchSize) {
		return math.MaxInt64
	}
	return int64(step) * int64(batchSize)
}

// lastStreamSequence returns the highest pair sequence among the newest messages of the
// raw and train streams, and whether either stream held a pair. A failed lookup is
// logged and treated as an empty stream, because resuming from the trainer's step alone
// is still correct: the duplicate window drops repeated pairs that are recent.
func (s *Stage) lastStreamSequence(ctx context.Context) (uint64, bool) {
	var last uint64
	found := false
	for _, src := range []struct{ stream, subject string }{
		{s.topo.RawStream, s.topo.RawSubject},
		{s.topo.TrainStream, s.topo.TrainSubject},
	} {
		seq, ok, err := newestPairSequence(ctx, s.js, src.stream, src.subject)
		if err != nil {
			s.log.Warn("reading the newest pair of a stream failed, resuming without it", "stream", src.stream, "err", err)
			continue
		}
		if ok && (!found || seq > last) {
			last, found = seq, true
		}
	}
	return last, found
}

// newestPairSequence returns the sequence of the newest pair on subject in stream, and
// false when the stream holds none.
func newestPairSequence(ctx context.Context, js jetstream.JetStream, stream, subject string) (uint64, bool, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, false, err
	}
	msg, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	pair, err := messages.DecodePair(msg.Data)
	if err != nil {
		return 0, false, fmt.Errorf("decode message %d: %w", msg.Sequence, err)
	}
	return pair.Sequence, true, nil
}

// watchRunEnd cancels the loader with a cause wrapping errRunEnded once the run state is
// finished or failed. It returns then, or when ctx ends.
func watchRunEnd(ctx context.Context, store *pipeline.RunStore, stop context.CancelCauseFunc, log *slog.Logger) {
	for {
		state, err := store.WaitFinal(ctx)
		if err == nil {
			log.Info("run ended, stopping the loader", "status", state.Status, "step", state.Step)
			stop(fmt.Errorf("%w: status %s at step %d", errRunEnded, state.Status, state.Step))
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("watching the run state failed, watching again in 1s", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
