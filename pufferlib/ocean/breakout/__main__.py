from pufferlib.ocean.breakout.breakout import play

play()
