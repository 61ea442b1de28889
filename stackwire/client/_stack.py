"""The one mapping from a client's configuration to its stack and transport."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import _Config
from ..auth import AuthMiddleware
from ..middlewares.decode import DecodeMiddleware
from ..middlewares.headers import HeadersMiddleware
from ..middlewares.query import QueryMiddleware
from ..middlewares.redirects import RedirectMiddleware
from ..middlewares.retry import (
    RetryMiddleware,
)
from ..middlewares.timeout import TimeoutMiddleware
from ..observability.otel import RequestSpan
from ..pipeline.clocks import Clocks
from ..pipeline.middleware import Middleware
from ..pipeline.pipeline import Pipeline
from ..pipeline.transport import Transport
from ..transports import AiohttpTransport


def _default_pipeline(config: _Config) -> Pipeline:
    # The deadline is measured on the clock the rest of the stack measures intervals
    # on (`Clocks`): the real monotonic one, or an injected clock, which a fake sleep
    # advances (VirtualTime), so a deadline test over fake sleeps ends when they add up.
    clocks = Clocks.for_client(config.sleep, config.clock)
    monotonic = time.monotonic if clocks is None else clocks.monotonic
    retry = RetryMiddleware(
        max_retries=config.max_retries,
        max_retry_after=config.max_retry_after,
        idempotency_header=config.idempotency_header,
        retry_count_header=config.retry_count_header,
        initial_delay=config.initial_delay,
        max_delay=config.max_delay,
        jitter=config.jitter,
        should_retry=config.should_retry,
        on_retry=config.on_retry,
        sleep=config.sleep,
        clock=config.clock,
        random=config.random,
        retry_budget=config.retry_budget,
        monotonic=monotonic,
    )
    stack: list[Middleware] = [
        HeadersMiddleware(
            config.headers,
            api_key=config.api_key,
            api_key_header=config.api_key_header,
            user_agent=config.user_agent,
            include_platform_headers=config.platform_headers,
            sensitive_headers=config.sensitive_headers,
        ),
        QueryMiddleware(
            config.query,
            array_format=config.query_array_format,
            nested_format=config.query_nested_format,
            origin=config.base_url,
        ),
        TimeoutMiddleware(config.timeout, deadline=config.deadline, monotonic=monotonic),
        retry,
        DecodeMiddleware(
            max_response_bytes=config.max_response_bytes,
            max_event_bytes=config.max_event_bytes,
            strict=config.strict,
        ),
        *config.middlewares,
        RedirectMiddleware(
            follow_redirects=config.follow_redirects,
            max_redirects=config.max_redirects,
            base_url=config.base_url,
        ),
        # Only a client with auth= has the stage: without one, no extra layer.
        *(
            [AuthMiddleware(config.auth, base_url=config.base_url, clock=config.clock)]
            if config.auth is not None
            else []
        ),
    ]
    return Pipeline(stack)


def with_auth_stage(pipeline: Pipeline, config: _Config) -> Pipeline:
    """``pipeline`` with an ``auth`` stage of no `Auth` of its own innermost, for the
    calls with a per-request ``auth=`` of a client made without one."""
    return insert_auth_stage(
        pipeline, AuthMiddleware(None, base_url=config.base_url, clock=config.clock)
    )


def insert_auth_stage(pipeline: Pipeline, stage: Middleware) -> Pipeline:
    """``pipeline`` with the ``auth`` stage ``stage`` added where a client built with
    its auth has it: innermost, but above ``otel.request`` (an instrumented client's
    CLIENT spans are below auth, so that a 401 refresh's repeat is a physical request
    of its own, with its own span, ``resend_count`` and ``traceparent``)."""
    if RequestSpan.name in pipeline:
        return pipeline.insert(stage, name="auth", before=RequestSpan.name)
    return pipeline.insert(stage, name="auth")


def _transport(config: _Config) -> Transport:
    """The transport a client sends through: the one given, else the default one."""
    if config.transport is not None:
        return config.transport
    return AiohttpTransport(
        session=config.session,
        max_connections=config.max_connections,
        verify=config.verify,
        trust_env=config.trust_env,
        proxy=config.proxy,
    )
