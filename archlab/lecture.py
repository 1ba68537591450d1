"""Facts printed in the source lecture, kept in one place for comparisons."""

# test accuracy (%) the lecture printed after 3,000 iterations
LECTURE_ACCURACY = {"dnn": 86.3, "cnn": 90.5}
