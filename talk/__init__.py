"""talk: speech → motion, an ARTalk re-implementation with streaming CPU inference (see docs/talk.md)."""
