package minion

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
)

// Results Minion's repair writes into the jobs it fails.
var (
	resultWorkerGone = json.RawMessage(`"Worker went away"`)
	resultStuck      = json.RawMessage(`"Job appears stuck in queue"`)
)

// deleteByID matches a DELETE that names one job by id, as Minion's
// remove_job does ("DELETE FROM minion_jobs WHERE id = $1 AND state IN …");
// repair's purges select jobs by condition instead.
var deleteByID = regexp.MustCompile(`(?is)^\s*DELETE\s+FROM\s+(?:\S+\.)?"?minion_jobs"?\s+(?:AS\s+\S+\s+)?WHERE\s+(?:\S+\.)?"?id"?\s*=`)

// deriveJobType names a job's change from the row before and after it.
//
// Minion's statements leave clear marks: dequeue sets active; finish_job
// and fail_job set finished or failed from active; repair fails active jobs
// with "Worker went away" and inactive ones with "Job appears stuck in
// queue"; retry_job sets inactive and adds one to retries. An automatic
// retry (auto_retry_job, right after a failure with attempts left) passes
// attempts - 1 and keeps the queue, priority, parents and lax; a manual one
// keeps attempts unless told otherwise. So a retry from failed that lowers
// attempts by exactly one and changes nothing else is automatic; the only
// manual retry that looks the same is one that explicitly passes
// attempts - 1, which is rare.
func deriveJobType(c Change, before, after *Job) (typ, retry string) {
	switch {
	case before == nil:
		return TypeEnqueued, ""
	case after == nil:
		if c.Query != "" {
			if deleteByID.MatchString(c.Query) {
				return TypeRemoved, ""
			}
			return TypePurged, ""
		}
		// No statement text: judge by the job, as repair would.
		if before.State == "finished" {
			return TypePurged, ""
		}
		return TypeRemoved, ""
	}
	sb, sa := before.State, after.State
	switch {
	case sb == sa && slices.Equal(c.Changed, []string{"notes"}):
		return TypeNoted, ""
	case sa == "inactive" && after.Retries > before.Retries:
		if sb == "failed" && after.Attempts == before.Attempts-1 && after.Queue == before.Queue &&
			after.Priority == before.Priority && after.Lax == before.Lax && slices.Equal(after.Parents, before.Parents) {
			return TypeRetried, RetryAutomatic
		}
		return TypeRetried, RetryManual
	case sb == "inactive" && sa == "active":
		return TypeStarted, ""
	case sb == "active" && sa == "finished":
		return TypeFinished, ""
	case sb == "active" && sa == "failed":
		if sameJSON(after.Result, resultWorkerGone) {
			return TypeWorkerLost, ""
		}
		return TypeFailed, ""
	case sb == "inactive" && sa == "failed":
		if sameJSON(after.Result, resultStuck) {
			return TypeStuck, ""
		}
		return TypeFailed, ""
	case sa == "failed" && sb != "failed":
		return TypeFailed, ""
	}
	return TypeUpdated, ""
}

// deriveScheduleType names a change of a Minion 12 schedule.
func deriveScheduleType(c Change, before, after *Schedule) string {
	switch {
	case before == nil:
		return TypeScheduled
	case after == nil:
		return TypeUnscheduled
	case !before.Paused && after.Paused:
		return TypeSchedulePaused
	case before.Paused && !after.Paused:
		return TypeScheduleResumed
	}
	dispatch := []string{"last_job", "last_run", "next_run"}
	for _, col := range c.Changed {
		if !slices.Contains(dispatch, col) {
			return TypeScheduleUpdated
		}
	}
	if slices.Contains(c.Changed, "last_job") {
		return TypeScheduleDispatched
	}
	return TypeScheduleUpdated
}

func sameJSON(a, b json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b))
}

// compatFrame returns the frame the notifier Minion users had before sends
// for an event — [id,"enqueue"], [id,"dequeue"], [id,"finished"] or
// [id,"failed"] — or nil when it sent none for such a change.
func compatFrame(e *Event) []byte {
	if e.Entity != "job" || e.JobID == nil {
		return nil
	}
	var what string
	switch e.Type {
	case TypeEnqueued:
		what = "enqueue"
	case TypeStarted:
		what = "dequeue"
	case TypeFinished:
		what = "finished"
	case TypeFailed, TypeWorkerLost, TypeStuck:
		what = "failed"
	default:
		return nil
	}
	b, _ := json.Marshal([]any{*e.JobID, what})
	return b
}
