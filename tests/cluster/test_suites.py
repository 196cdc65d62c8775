"""The single-Redis tests that SPEC §13.1 names, run again with every instance on the cluster.

Imported test functions are collected here as well as in their own module, and they resolve
`config` through tests/cluster/conftest.py: the same assertions, two instances on a 3-master
Valkey Cluster. Cookie sessions and their end, login limits (per-key scripts over a
non-transactional pipeline split per node), CallUp limits (one script, one hash tag), streams and
recovery (publish script with SPUBLISH, an outbox pipelined per node), presence (scripts announcing with SPUBLISH, sweeps pipelined per node) and the
control channel (revocations reach the sockets of the other instance through its shard), and the
batched access checks of concurrent upgrades (deny-list keys of many slots in one read).
"""

from __future__ import annotations

from tests.auth.test_login_limits import test_limit_is_shared_by_instances, test_per_address_across_accounts
from tests.auth.test_sessions import (
    test_end_all_sessions,
    test_revoke_user_kills_tokens_and_sessions,
    test_session_works_on_both_instances,
    test_sign_in_rotates_and_sign_out_keeps_the_sessid,
)
from tests.callup.test_limits import (
    test_concurrent_creations_on_two_instances_never_pass_the_limit,
    test_phone_limit_holds_across_apps,
)
from tests.realtime.test_auth import (
    test_logout_all_closes_every_socket_of_the_user,
    test_logout_on_another_instance_closes_only_that_tokens_sockets,
)
from tests.realtime.test_bus import (
    test_a_deferred_block_arrives_in_order_with_contiguous_offsets,
    test_event_published_on_a_reaches_subscribers_on_a_and_b,
    test_events_arrive_in_publish_order,
    test_publish_idempotency_key_is_shared_by_instances,
)
from tests.realtime.test_presence import (
    test_a_refresh_of_many_channels_is_batched_and_sweeps_each,
    test_an_expired_entry_is_swept_and_announced_once,
    test_one_socket_leaving_of_two_on_two_instances_announces_nothing,
    test_online_is_any_live_socket_on_any_instance,
    test_two_sockets_of_one_user_are_one_entry_and_one_leave,
)
from tests.realtime.test_recovery import (
    test_a_burst_while_clients_resubscribe_leaves_no_gap_and_no_duplicate,
    test_history_api,
    test_lost_stream_keys_make_a_new_epoch,
    test_missed_events_are_recovered_on_another_instance,
)
from tests.realtime.test_upgrade_batching import (
    test_concurrent_upgrades_are_judged_each_on_its_own_token,
    test_lookups_of_one_tick_share_one_read,
)
from tests.sharing.test_free_cars import (
    test_a_booking_on_one_instance_leaves_the_list_of_the_other,
    test_the_kept_list_is_served_only_within_the_pubsub_session_it_was_read_in,
)

__all__ = [
    "test_a_booking_on_one_instance_leaves_the_list_of_the_other",
    "test_a_burst_while_clients_resubscribe_leaves_no_gap_and_no_duplicate",
    "test_a_deferred_block_arrives_in_order_with_contiguous_offsets",
    "test_a_refresh_of_many_channels_is_batched_and_sweeps_each",
    "test_an_expired_entry_is_swept_and_announced_once",
    "test_concurrent_creations_on_two_instances_never_pass_the_limit",
    "test_concurrent_upgrades_are_judged_each_on_its_own_token",
    "test_end_all_sessions",
    "test_event_published_on_a_reaches_subscribers_on_a_and_b",
    "test_events_arrive_in_publish_order",
    "test_history_api",
    "test_limit_is_shared_by_instances",
    "test_logout_all_closes_every_socket_of_the_user",
    "test_logout_on_another_instance_closes_only_that_tokens_sockets",
    "test_lookups_of_one_tick_share_one_read",
    "test_lost_stream_keys_make_a_new_epoch",
    "test_missed_events_are_recovered_on_another_instance",
    "test_one_socket_leaving_of_two_on_two_instances_announces_nothing",
    "test_online_is_any_live_socket_on_any_instance",
    "test_per_address_across_accounts",
    "test_phone_limit_holds_across_apps",
    "test_publish_idempotency_key_is_shared_by_instances",
    "test_revoke_user_kills_tokens_and_sessions",
    "test_session_works_on_both_instances",
    "test_sign_in_rotates_and_sign_out_keeps_the_sessid",
    "test_the_kept_list_is_served_only_within_the_pubsub_session_it_was_read_in",
    "test_two_sockets_of_one_user_are_one_entry_and_one_leave",
]
