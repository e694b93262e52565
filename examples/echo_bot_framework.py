"""Echo bot on dchat-bots: DCHAT_BOT_URL=http://<bot node> DCHAT_BOT_TOKEN=<n:secret> python ..."""

import os

from dchat_bots import Bot, Context, Dispatcher, Message, Text

dp = Dispatcher()


@dp.message(Text())
async def echo(message: Message, ctx: Context) -> None:
    await ctx.answer(message.text or "")


dp.run_polling(Bot(os.environ["DCHAT_BOT_TOKEN"], os.environ["DCHAT_BOT_URL"]))
