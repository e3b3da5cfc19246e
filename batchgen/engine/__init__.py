"""One TaskGroup: admission, submits, following requests, storing images, retries."""
