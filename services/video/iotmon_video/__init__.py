"""iotmon video: one pipeline per camera (capture, motion gate, detection, tracking,
zone and line analytics), published as contract events with snapshots and clips."""
