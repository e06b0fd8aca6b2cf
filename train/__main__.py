from train.run_vqa import main

main()
