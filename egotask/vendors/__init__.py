"""One way to call a vendor API, for the judge and the served models alike.

- :mod:`egotask.vendors.retry`: the retry policy: every HTTP status or exception is a retry, an item
  failure or fatal; exponential backoff with jitter, never sooner than ``Retry-After`` (capped);
- :mod:`egotask.vendors.gemini`: the google-genai client (generate; Batch and Files through the same
  client), reading its replies and classifying its errors;
- :mod:`egotask.vendors.openai_chat`: the same for OpenAI-compatible chat completions;
- :mod:`egotask.vendors.deadline` and :mod:`egotask.vendors.transport`: a total deadline per
  synchronous request, honoured by httpx's sockets.

Two calling styles over that one policy, by choice: the judge stays threaded, because lmms-eval calls
it synchronously from its own ``process_results`` threads (a verdict per call, a deadline per
thread); the served models stay async, because one loop keeps dozens of multi-megabyte requests in
flight while frames are encoded in worker processes. What differs between the two is only who
waits (``time.sleep`` or ``asyncio.sleep``) and which client object sends; what a failure means and
how long to wait is decided here once. Importing this package imports no HTTP library.
"""
