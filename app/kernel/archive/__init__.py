"""The event archive: acknowledged stream entries as immutable Parquet segments, then trimmed.

- `segment`: the file format (one row per entry; Parquet, zstd) and where a segment lives;
- `store`: the object store (a directory, or an S3-compatible bucket) through pyarrow.fs;
- `manifest`: per partition, the segments archived (the durable truth), and its Redis cache;
- `groups`: how far every consumer group of a stream has acknowledged;
- `holds`: readers (a rebuild, the audit) that still need entries the trim must keep;
- `trim`: XTRIM MINID within what is archived, acknowledged, held and past retention;
- `partition`: one partition's archiving (read, segments, manifest, trim);
- `archiver`: the loop of the partitions one process owns by lease;
- `reader`: one sequence per partition, archive then stream;
- `verify`: checksums, contiguity and the status of each partition's archive.
"""
