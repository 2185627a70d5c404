"""Request parts shared by the queue and run hosts: the input body and the app id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body

from contracts.schemas import LipsyncInput

InputBody = Annotated[LipsyncInput, Body()]
