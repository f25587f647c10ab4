"""The run loop shared by the answer, judge and grade steps: every job at once, each result appended as it lands,
an endpoint that keeps failing for one job recorded in ``failures.jsonl`` (the next run does that job again)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from openchat_hf.evaluation.client import EndpointError
from openchat_hf.evaluation.records import JsonlAppender


async def run_jobs(
    jobs: Iterable[Any],
    work: Callable[[Any], Awaitable[Any]],
    *,
    out_path: str | Path,
    failures_path: str | Path,
    desc: str,
    on_result: Callable[[JsonlAppender, Any, Any], None],
    on_failure: Callable[[Any, EndpointError], dict],
) -> None:
    """Run ``work(job)`` for every job (``work`` bounds its own concurrency) and handle them in completion order:
    ``on_result(out, job, value)`` with ``out_path`` open for appending, or, when ``work`` raised a retryable
    ``EndpointError``, append the row ``on_failure(job, err)`` to ``failures_path``. Any other error cancels the
    jobs still running and propagates."""
    jobs = list(jobs)

    async def one(job):
        try:
            return job, await work(job), None
        except EndpointError as err:
            if not err.retryable:
                raise
            return job, None, err

    tasks = [asyncio.ensure_future(one(job)) for job in jobs]
    failures = None
    try:
        with JsonlAppender(out_path) as out, tqdm(total=len(jobs), desc=desc) as bar:
            for next_done in asyncio.as_completed(tasks):
                job, value, err = await next_done
                if err is not None:
                    failures = failures or JsonlAppender(failures_path)
                    failures.write(on_failure(job, err))
                else:
                    on_result(out, job, value)
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if failures is not None:
            failures.close()
