"""What identity talks to outside itself: the operator check and the SMS gateway."""
