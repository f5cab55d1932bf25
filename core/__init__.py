"""RoomFit's shared core: the contracts and helpers that several parts use (manifest lines, class rules, image
decoding, the model's pre- and post-processing, the CLI runner). Light dependencies only (numpy, Pillow, PyYAML);
it imports no other RoomFit part."""
