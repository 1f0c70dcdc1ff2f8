from pufferlib.ocean.connect4.connect4 import play

play()
