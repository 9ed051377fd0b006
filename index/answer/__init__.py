"""Answering: query → retrieve → quote → decide, one small component per step, wired in
`index.answer.pipeline`; `index.answer.followup` says when a question follows up on an answer."""
