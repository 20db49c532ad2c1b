"""Every database query, one function each, and the numbered migrations: a module per
part of the domain.

SQLite in WAL mode, opened through sqlite-utils (``base``). Writers hold ``BEGIN
IMMEDIATE`` transactions (``with write(db):``) so that several server processes
on one file queue for the write lock instead of failing with "database is
locked"; readers never wait for writers. Callers use the names below
(``store.get_submission``), never the modules inside.
"""
from .accounts import (  # noqa: F401
    add_login_attempt,
    clear_login_failures,
    delete_login_attempt,
    fail_login_attempt,
    get_user,
    insert_token,
    insert_user,
    list_tokens,
    list_users,
    login_failures,
    revoke_token,
    revoke_token_by_prefix,
    revoke_tokens,
    throttle_audited,
    update_user,
    user_by_token,
)
from .audit import (  # noqa: F401
    audit,
    list_audit,
)
from .base import (  # noqa: F401
    BUSY_TIMEOUT_S,
    MAX_ROW_ID,
    Busy,
    MissingFolder,
    _json,
    connect,
    decode_cursor,
    encode_cursor,
    write,
)
from .grids import (  # noqa: F401
    count_grids,
    get_grid,
    grid_revision,
    list_grids,
    upsert_area_names,
    upsert_grids,
)
from .migrations import (  # noqa: F401
    MIGRATIONS,
    is_current,
    migrate,
    recount_monitor,
    schema_version,
    STATE_COLUMNS,
)
from .moves import (  # noqa: F401
    decide_moves,
    follow_moves,
    get_move,
    list_open_moves,
    request_moves,
)
from .monitor import (  # noqa: F401
    active_records,
    frequent_field_errors,
    area_names,
    monitor_areas,
    monitor_workers,
    oldest_pending,
    review_times,
    submissions_per_day,
)
from .records import (  # noqa: F401
    HISTORY_COLUMNS,
    RECORD_COLUMNS,
    add_history,
    clear_records,
    count_records,
    get_record,
    get_records,
    list_records,
    put_records,
    record_history,
)
from .releases import (  # noqa: F401
    _LIST_FAST,
    building_releases,
    csv_quote,
    fail_release,
    finish_release,
    get_release,
    insert_release,
    list_releases,
    mask_sql,
    release_dictionary,
    release_files,
    release_row_count,
    release_rows,
    write_release_file,
)
from .submissions import (  # noqa: F401
    QUEUE_STATES,
    SUBMISSION_COLUMNS,
    add_invalid_attempts,
    add_photo,
    awaiting_correction,
    existing_submissions,
    get_photo,
    get_submission,
    get_submissions,
    insert_submissions,
    last_merge_seq,
    list_submissions,
    merged_in_order,
    photos_of,
    queue_counts,
    review_queue,
    set_reviews,
)
