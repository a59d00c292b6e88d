"""The workload generator drives the real REST API (ASGI in process, policy in background)."""

from adapters.workload import WorkloadConfig, drive_http, generate

SMALL = WorkloadConfig(seed=11, days=1, creators=15, viewers=300, views_per_day=800, report_waves=2)


def test_generated_workload_goes_through_http_and_policy_applies_decisions(served):
    client, container = served
    workload = generate(SMALL)
    progressed: list[int] = []

    stats = drive_http(client, workload.commands, progress=progressed.append)

    assert sum(progressed) == workload.items
    assert stats.recorded + stats.duplicate + stats.rejected == workload.items
    assert stats.recorded > 0.95 * workload.items
    waves = workload.truth.report_waves
    assert waves, "the workload must contain report waves"
    follower = container.followers[0]

    def statuses_match() -> bool:
        return all(
            container.content.get_video(w.video_id).status == w.final_video_status for w in waves
        )

    assert follower.wait_until(statuses_match, timeout=10)
